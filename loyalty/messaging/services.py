"""The outbox's queue: how every part of the programme sends anything. A message is written in
the transaction of the change that causes it, and sent after the commit by `send-outbox`
(loyalty/messaging/sending.py), so a rolled-back change never sends anything.

    queue(session, kind, recipient, template, data, dedupe_key, due_at)

`kind` is email, sms or webhook; `recipient` an address, a phone number (E.164) or a URL;
`template` names what is said (loyalty/messaging/templates.py; a webhook's template is its event
type) and `data` fills it in; `dedupe_key` makes queueing idempotent: a key queued once is never
queued again, so a job run twice or a request retried sends nothing twice. `queue_many` queues
a batch in one statement for set-based jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from loyalty.db import upsert_insert
from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.templates import TEMPLATES

_outbox = cast("Table", OutboxMessage.__table__)
DEDUPE_KEY_LENGTH = 120
RECIPIENT_LENGTH = 254


class MessageKind(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Message:
    kind: MessageKind
    recipient: str
    template: str
    data: Mapping[str, Any]
    dedupe_key: str
    due_at: datetime
    member_id: int | None = None  # whom it is about, when a member


def _row(message: Message, now: datetime) -> dict[str, Any]:
    kind = MessageKind(message.kind)
    if kind != MessageKind.WEBHOOK and message.template not in TEMPLATES:
        msg = f"no template named {message.template!r}"
        raise ValueError(msg)
    if not 0 < len(message.dedupe_key) <= DEDUPE_KEY_LENGTH:
        msg = f"a dedupe key has 1 to {DEDUPE_KEY_LENGTH} characters"
        raise ValueError(msg)
    if not 0 < len(message.recipient) <= RECIPIENT_LENGTH:
        msg = f"a recipient has 1 to {RECIPIENT_LENGTH} characters"
        raise ValueError(msg)
    return {
        "channel": kind.value,
        "template": message.template,
        "member_id": message.member_id,
        "recipient": message.recipient,
        "payload": dict(message.data),
        "dedupe_key": message.dedupe_key,
        "created_at": now,
        "available_at": message.due_at,
        "attempts": 0,
    }


def queue_many(session: Session, messages: Iterable[Message], *, now: datetime) -> int:
    """Queue every message whose dedupe key is new, in one statement; how many were queued."""
    rows = [_row(message, now) for message in messages]
    if not rows:
        return 0
    session.flush()
    connection = session.connection()
    statement = (
        upsert_insert(connection.dialect.name)(_outbox)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_outbox.c.id)
    )
    return len(connection.execute(statement, rows).all())


def queue(  # noqa: PLR0917 - the outbox's one documented call, positional as written
    session: Session,
    kind: MessageKind,
    recipient: str,
    template: str,
    data: Mapping[str, Any],
    dedupe_key: str,
    due_at: datetime,
    *,
    now: datetime,
    member_id: int | None = None,
) -> bool:
    """Queue one message in the caller's transaction, to be sent from `due_at`; False when
    its dedupe key was queued before (nothing is queued twice)."""
    message = Message(kind, recipient, template, data, dedupe_key, due_at, member_id)
    return queue_many(session, [message], now=now) == 1
