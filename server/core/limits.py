"""Rate limits. Anything that answers "no such card / member" can be used to guess, so failed
look-ups of every kind share one budget per terminal; successful calls never count."""

from __future__ import annotations

from flask import Response

from server.core import context
from server.core.extensions import limiter

_FAILED_LOOKUP = {404, 422}


def _failed_lookup_limit() -> str:
    return f"{context.settings().identify_failures_per_minute}/minute"


def _is_failed_lookup(response: Response) -> bool:
    return response.status_code in _FAILED_LOOKUP


failed_lookups = limiter.shared_limit(
    _failed_lookup_limit, scope="failed-lookups", deduct_when=_is_failed_lookup
)
