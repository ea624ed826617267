"""Sending the outbox. Messages were written in the transaction that caused them; here a worker
claims the ones that are due, sends each through a backend, and records what happened.

Backends, one per kind of message (`Dispatcher`): email goes by `SmtpBackend` (LOYALTY_SMTP_URL)
or, in the embedded default, to `RecordingBackend`, which appends each message as one JSON line
to a file under instance/ so an operator sees what would have gone out; SMS is recorded the same
way until a gateway is configured; webhooks are POSTed by `WebhookBackend`, signed with
HMAC-SHA256 over the timestamp and the body. `backend_from_settings` builds the dispatcher.

Delivery is at least once: a message is claimed (attempts + 1, and a lease: nobody else takes it
for `LEASE`) and committed before it is sent, then marked sent; a worker that dies between the
two leaves it to be sent again when the lease ends. A failure is stored in `last_error` and the
message waits `retry_delay(attempts)` before the next try; after `MAX_ATTEMPTS` it stays unsent
with its last error, for an operator to look at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import unquote, urlsplit

from sqlalchemy import Table, and_, select, update
from sqlalchemy.orm import Session

from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.templates import Rendered, render
from loyalty.settings import Settings

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
ERROR_LENGTH = 2_000

_outbox = cast("Table", OutboxMessage.__table__)


@dataclass(frozen=True)
class Outgoing:
    """One message as a backend sees it: rendered, addressed, with the payload it came from."""

    id: int
    channel: str
    recipient: str
    template: str
    payload: dict[str, Any]
    subject: str
    text: str


class MessageBackend(Protocol):
    def send(self, message: Outgoing) -> None:
        """Deliver the message or raise; whatever it raises is recorded and retried."""


class UnsupportedChannel(ValueError):
    pass


class RecordingBackend:
    """Appends each message as one JSON line to `path`: the embedded default, and what a
    developer reads to see the mail the program would send."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: Outgoing) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "id": message.id,
                "channel": message.channel,
                "to": message.recipient,
                "template": message.template,
                "subject": message.subject,
                "text": message.text,
                "payload": message.payload,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # "none", "starttls" or "tls"
    username: str | None
    password: str | None


_SECURITY = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://host:port (plain), smtp+starttls://user:password@host:587, smtps://host:465."""
    parts = urlsplit(url)
    if parts.scheme not in _SECURITY or not parts.hostname:
        msg = "LOYALTY_SMTP_URL looks like smtp://host:25, smtp+starttls://user:pass@host:587 or smtps://user:pass@host:465"
        raise ValueError(msg)
    security, default_port = _SECURITY[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpBackend:
    """Sends email through an SMTP server, one connection per message."""

    def __init__(self, url: str, sender: str, *, timeout: float = 30) -> None:
        self.server = parse_smtp_url(url)
        self.sender = sender
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == "tls":
            return smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        connection = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        if server.security == "starttls":
            connection.starttls(context=ssl.create_default_context())
        return connection

    def send(self, message: Outgoing) -> None:
        if message.channel != "email":
            raise UnsupportedChannel(f"SMTP sends email, not {message.channel}")
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now().astimezone())
        email["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        email.set_content(message.text)
        with self._connect() as connection:
            if self.server.username:
                connection.login(self.server.username, self.server.password or "")
            connection.send_message(email)


WEBHOOK_TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Loyalty-Signature"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>`: a receiver recomputes it with the
    shared secret and refuses a stale timestamp, so a captured call cannot be replayed later."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


class WebhookBackend:
    """POSTs `{"event": template, "id": message id, "data": payload}` as JSON to the recipient
    URL; any answer but 2xx is a failure, retried like any other."""

    def __init__(self, secret: str, *, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> None:
        self.secret = secret
        self.timeout = timeout

    def send(self, message: Outgoing) -> None:
        if urlsplit(message.recipient).scheme not in {"http", "https"}:
            raise UnsupportedChannel(f"a webhook goes to an http(s) URL, not {message.recipient!r}")
        body = json.dumps(
            {"event": message.template, "id": message.id, "data": message.payload},
            sort_keys=True,
        ).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            message.recipient,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: webhook_signature(self.secret, timestamp, body),
            },
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()


class Dispatcher:
    """Sends each message by the backend of its kind."""

    def __init__(self, backends: dict[str, MessageBackend]) -> None:
        self.backends = backends

    def send(self, message: Outgoing) -> None:
        backend = self.backends.get(message.channel)
        if backend is None:
            raise UnsupportedChannel(f"no backend sends {message.channel} messages")
        backend.send(message)


def backend_from_settings(settings: Settings) -> Dispatcher:
    recording = RecordingBackend(settings.outbox_file)
    email: MessageBackend = (
        SmtpBackend(settings.smtp_url, settings.mail_from) if settings.smtp_url else recording
    )
    return Dispatcher(
        {"email": email, "sms": recording, "webhook": WebhookBackend(settings.webhook_secret)}
    )


_NONE = Rendered(subject="", text="")  # a webhook sends its data as it is


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after the 1st, 2nd, 3rd … failed attempt, at most 6 hours."""
    doublings = min(max(attempts - 1, 0), 16)  # far past the cap, and never an overflow
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    failed: int = 0

    def describe(self) -> str:
        text = f"sent {self.sent:,} message{'' if self.sent == 1 else 's'}"
        if self.failed:
            text += f", {self.failed:,} failed (tried again later)"
        return text


def send_outbox(
    session: Session,
    backend: MessageBackend,
    now: datetime,
    limit: int = 100,
    *,
    checkpoint: Callable[[], None] | None = None,
) -> SendReport:
    """Send up to `limit` due messages, oldest first. `checkpoint` (the caller's commit) runs
    after the claim and after each message, so nothing is held locked while a message is on
    its way and a crash loses no record of what was sent."""
    due = and_(
        _outbox.c.sent_at.is_(None),
        _outbox.c.available_at <= now,
        _outbox.c.attempts < MAX_ATTEMPTS,
    )
    session.flush()
    connection = session.connection()
    claimed = connection.execute(
        select(
            _outbox.c.id,
            _outbox.c.channel,
            _outbox.c.recipient,
            _outbox.c.template,
            _outbox.c.payload,
            _outbox.c.attempts,
        )
        .where(due)
        .order_by(_outbox.c.available_at, _outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # another sender takes the next ones (PostgreSQL)
    ).all()
    if not claimed:
        return SendReport()
    connection.execute(
        update(_outbox)
        .where(_outbox.c.id.in_([row.id for row in claimed]))
        .values(attempts=_outbox.c.attempts + 1, available_at=now + LEASE)
    )
    if checkpoint is not None:
        checkpoint()
    sent = failed = 0
    for row in claimed:
        outcome: dict[str, Any]
        try:
            rendered = render(row.template, row.payload) if row.channel != "webhook" else _NONE
            backend.send(
                Outgoing(
                    id=row.id,
                    channel=row.channel,
                    recipient=row.recipient,
                    template=row.template,
                    payload=row.payload,
                    subject=rendered.subject,
                    text=rendered.text,
                )
            )
        except Exception as exc:  # noqa: BLE001 - whatever a backend raises is recorded and retried
            failed += 1
            outcome = {
                "last_error": f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH],
                "available_at": now + retry_delay(row.attempts + 1),
            }
        else:
            sent += 1
            outcome = {"sent_at": now, "last_error": None}
        session.connection().execute(
            update(_outbox).where(_outbox.c.id == row.id).values(**outcome)
        )
        if checkpoint is not None:
            checkpoint()
    return SendReport(sent=sent, failed=failed)
