"""Exactly-once requests: ids a client chooses (a till's `external_id`, an `Idempotency-Key`
header), and the fingerprint of a request's body that tells a replay, answered with the first
result, from a reuse of the id for something else, which is a conflict.

Sales, returns and voids are exactly-once by their own tables. Every other write that takes an
`Idempotency-Key` (an enrolment, a card handed out, blocked or replaced, a staff adjustment)
goes through `once`: the key is claimed with INSERT … ON CONFLICT DO NOTHING in the request's
own transaction, so a retry racing the first request waits for it (PostgreSQL; SQLite's write
lock serialises them) and then answers its result; a refused request rolls the claim back with
it, so the key stays free.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, BigInteger, String, Table, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.db import UPSERT_INSERT, Base, BigIntPK, UtcDateTime
from loyalty.errors import Conflict, InvalidInput
from loyalty.results import Outcome, plain, restored, stored

T = TypeVar("T")

# Printable ASCII without spaces, 1 to 64 characters: fits a header, a URL and a column.
CLIENT_ID = re.compile(r"\A[\x21-\x7e]{1,64}\Z")


# Request fields added after requests were first stored: left out while empty, so a request
# recorded before they existed keeps its fingerprint (and its replay).
ADDED_LATER = frozenset({"referral_code", "payment_fingerprint"})


def fingerprint(request: Any) -> str:
    """SHA-256 of the request's canonical JSON (a dataclass or a mapping)."""
    body = plain(request) if is_dataclass(request) and not isinstance(request, type) else request
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if not (k in ADDED_LATER and v is None)}
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


class IdempotentRequest(Base):
    """A request sent with an idempotency key, and its first result. Keys belong to their
    `owner` (the terminal or staff key that sent them), so two callers cannot collide."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("owner", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    owner: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str] = mapped_column(String(64))
    # filled in by the request that claimed the key, in the same transaction
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # whom the result is about: an erasure forgets the results about the member it erases
    member_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class Idempotency:
    owner: str  # whose key it is: "staff:<id>", "terminal:<id>"
    key: str


_requests = cast("Table", IdempotentRequest.__table__)
_CLAIM_KEY = {
    name: dialect_insert(_requests)
    .on_conflict_do_nothing(index_elements=["owner", "idempotency_key"])
    .returning(_requests.c.id)
    for name, dialect_insert in UPSERT_INSERT.items()
}
HEADER = "Idempotency-Key"


def once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    operation: str,
    request: Any,
    result_type: type[T],
    run: Callable[[], T],
    now: datetime,
    member_of: Callable[[T], int | None] = lambda _result: None,
) -> Outcome[T]:
    """`run()` at most once per idempotency key (every time without one). `request` is what
    makes two calls the same (the body and the path's ids); the same key with another request,
    or for another operation, is a conflict. `member_of` names the member the result is about,
    so that erasing the member forgets it (`forget_member`)."""
    if idempotency is None:
        return Outcome(run(), created=True)
    if not CLIENT_ID.match(idempotency.key):
        raise InvalidInput(
            "an idempotency key is 1 to 64 printable characters without spaces", field=HEADER
        )
    request_hash = fingerprint({"operation": operation, "request": request})
    session.flush()
    connection = session.connection()
    claimed = connection.execute(
        _CLAIM_KEY[connection.dialect.name],
        {
            "owner": idempotency.owner,
            "idempotency_key": idempotency.key,
            "operation": operation,
            "request_hash": request_hash,
            "result": None,
            "created_at": now,
        },
    ).scalar_one_or_none()
    if claimed is None:
        first = connection.execute(
            select(_requests.c.request_hash, _requests.c.result).where(
                _requests.c.owner == idempotency.owner,
                _requests.c.idempotency_key == idempotency.key,
            )
        ).one()
        if first.request_hash != request_hash or first.result is None:
            raise IdempotencyConflict("idempotency key", idempotency.key, field=HEADER)
        return Outcome(restored(first.result, result_type), created=False)
    result = run()
    session.flush()
    connection.execute(
        update(_requests)
        .where(_requests.c.id == claimed)
        .values(result=stored(result), member_id=member_of(result))
    )
    return Outcome(result, created=True)


ERASED = "erased"


def forget_member(session: Session, member_id: int) -> None:
    """The right to erasure reaches the answers kept for retries: those about the member lose
    their result, and a retry with their key is refused (409) rather than answered with the
    member's personal data, or carried out again."""
    session.flush()
    session.connection().execute(
        update(_requests)
        .where(_requests.c.member_id == member_id)
        .values(result=None, request_hash=ERASED)
    )
