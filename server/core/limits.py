"""Rate limits on guessing. Anything that answers "no such card / member" could be used to
guess, so failed look-ups of every kind share one budget per terminal (per address for other
callers): `LOYALTY_IDENTIFY_FAILURES_PER_MINUTE`, kept in Redis when configured so that every
worker shares it, else in the process.

Only failures count, and only a failure asks the store: a look-up that succeeds costs nothing
(limit the failures, not the till). The failure that spends the budget is answered 429
instead of 404/422, with Retry-After; the process then remembers the caller is over budget
until the window ends, and refuses their next look-ups before reading anything (429), without
asking the store again. Built on `limits`, the library Flask-Limiter itself stands on.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse, storage, strategies
from werkzeug.exceptions import HTTPException, TooManyRequests

from loyalty.errors import DomainError, InvalidInput, NotFound

View = TypeVar("View", bound=Callable[..., Any])
log = logging.getLogger(__name__)

_FAILED_LOOKUP = {404, 422}


class FailureBudget:
    def __init__(self, storage_uri: str, per_minute: int) -> None:
        self.item: RateLimitItem = parse(f"{per_minute}/minute")
        self.limiter = strategies.FixedWindowRateLimiter(storage.storage_from_string(storage_uri))
        self.blocked_until: dict[str, float] = {}

    def refused(self, key: str) -> float | None:
        """Seconds until `key` may look up again, when this process knows it is over budget."""
        until = self.blocked_until.get(key)
        if until is None:
            return None
        left = until - time.time()
        if left <= 0:
            del self.blocked_until[key]
            return None
        return left

    def spend(self, key: str) -> float | None:
        """Count one failure; the seconds to wait when that spent the budget. A store that
        cannot be reached counts nothing (the tills keep working)."""
        try:
            if self.limiter.hit(self.item, key):
                return None
        except Exception:
            log.warning("the failed look-up budget could not be counted", exc_info=True)
            return None
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        self.blocked_until[key] = reset
        return max(reset - time.time(), 1.0)


def init_limits(app: Flask, *, storage_uri: str, per_minute: int) -> None:
    app.extensions["loyalty.failure_budget"] = FailureBudget(storage_uri, per_minute)


def _key() -> str:
    terminal = g.get("terminal")
    if terminal is not None:
        return f"terminal:{terminal.id}"
    return request.remote_addr or "unknown"


def _too_many(seconds: float) -> TooManyRequests:
    return TooManyRequests(
        description="too many failed look-ups from this till: wait before trying again",
        retry_after=int(seconds) + 1,
    )


def _is_failed_lookup(exc: Exception) -> bool:
    if isinstance(exc, HTTPException):
        return exc.code in _FAILED_LOOKUP
    return isinstance(exc, NotFound | InvalidInput)


def failed_lookups(view: View) -> View:
    """Budget the failures of this view (see the module's docstring)."""

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budget: FailureBudget = current_app.extensions["loyalty.failure_budget"]
        key = _key()
        wait = budget.refused(key)
        if wait is not None:
            raise _too_many(wait)
        try:
            return view(*args, **kwargs)
        except (DomainError, HTTPException) as exc:
            if _is_failed_lookup(exc):
                wait = budget.spend(key)
                if wait is not None:
                    raise _too_many(wait) from exc
            raise

    return limited  # type: ignore[return-value]
