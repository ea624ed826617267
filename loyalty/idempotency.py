"""Exactly-once requests: ids a client chooses (a till's `external_id`, a back office's
`Idempotency-Key`), and the fingerprint of a request's body that tells a replay, answered with
the first result, from a reuse of the id for something else, which is a conflict."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, is_dataclass
from typing import Any

from loyalty.errors import Conflict

# Printable ASCII without spaces, 1 to 64 characters: fits a header, a URL and a column.
CLIENT_ID = re.compile(r"\A[\x21-\x7e]{1,64}\Z")


def fingerprint(request: Any) -> str:
    """SHA-256 of the request's canonical JSON (a dataclass or a mapping)."""
    body = asdict(request) if is_dataclass(request) and not isinstance(request, type) else request
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyConflict(Conflict):
    title = "Id already used for another request"

    def __init__(self, what: str, client_id: str, *, field: str = "external_id") -> None:
        super().__init__(
            f"{what} {client_id!r} was already recorded with a different body; "
            f"use a new {field} for a new request",
            field=field,
        )
