"""API keys: `<prefix>_<key id>_<secret>`. The key id finds the row; only a SHA-256 of the
secret is stored. The secret is 256 random bits, so a fast hash is as safe as a slow one and
keeps every request cheap (the reasoning of GitHub's and Stripe's tokens)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.orm import Session

KEY_PARTS = 3


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_hash: str
    plaintext: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(prefix: str, key_id: str | None = None) -> NewKey:
    key_id = key_id or secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, hash_secret(secret), f"{prefix}_{key_id}_{secret}")


def split_key(prefix: str, api_key: str) -> tuple[str, str] | None:
    """(key id, secret), or None when the key is not of this kind."""
    parts = api_key.split("_", KEY_PARTS - 1)
    if len(parts) != KEY_PARTS or parts[0] != prefix:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(secret))


def find_key(
    session: Session,
    prefix: str,
    by_key_id: Executable,
    api_key: str,
    now: datetime | None = None,
) -> Any | None:
    """The row `by_key_id` finds (it selects `key_hash`, bound by `:key_id`) when the key is of
    this kind and its secret matches, else None. A row that also selects `previous_key_hash`
    and `previous_key_valid_until` (a key rotated with a grace period) accepts the key it
    replaced until then."""
    parts = split_key(prefix, api_key)
    if parts is None:
        return None
    key_id, secret = parts
    row = session.connection().execute(by_key_id, {"key_id": key_id}).first()
    if row is None:
        return None
    if secret_matches(secret, row.key_hash):
        return row
    previous = getattr(row, "previous_key_hash", None)
    until = getattr(row, "previous_key_valid_until", None)
    if previous and until is not None and now is not None and now < until:
        return row if secret_matches(secret, previous) else None
    return None
