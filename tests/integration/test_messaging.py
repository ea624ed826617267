"""The outbox's queue, as every part of the programme uses it: email, SMS and webhooks, queued
in the caller's transaction, never twice for one dedupe key; webhooks POSTed, signed, to a
real HTTP receiver; and the record each background job leaves of its run."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.jobs import services as jobs
from loyalty.jobs.models import JobRun
from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.sending import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backend_from_settings,
    send_outbox,
)
from loyalty.messaging.services import Message, MessageKind, queue, queue_many
from loyalty.messaging.templates import POINTS_EXPIRING
from tests.conftest import app_settings

AT = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SECRET = "webhook-test-secret"


def _rows(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_queueing_writes_one_message_in_the_callers_transaction_and_never_twice(session):
    data = {"name": "Ada", "points": 10, "expires_on": "2026-05-31"}
    first = queue(
        session, MessageKind.EMAIL, "ada@example.com", POINTS_EXPIRING, data, "k-1", AT, now=AT
    )
    again = queue(
        session, MessageKind.EMAIL, "ada@example.com", POINTS_EXPIRING, data, "k-1", AT, now=AT
    )

    assert (first, again) == (True, False)
    [message] = _rows(session)
    assert (message.channel, message.recipient, message.payload) == (
        "email",
        "ada@example.com",
        data,
    )
    assert (message.available_at, message.attempts, message.sent_at) == (AT, 0, None)

    nested = session.begin_nested()
    queue(session, MessageKind.SMS, "+447700900123", POINTS_EXPIRING, data, "k-2", AT, now=AT)
    nested.rollback()
    assert [m.dedupe_key for m in _rows(session)] == ["k-1"], "a rolled back change sends nothing"


def test_a_batch_is_queued_in_one_go_and_keys_already_queued_are_left_out(session):
    messages = [
        Message(
            MessageKind.WEBHOOK, "http://127.0.0.1:9/hook", "sale.committed", {"n": n}, f"b-{n}", AT
        )
        for n in range(5)
    ]
    assert queue_many(session, messages[:2], now=AT) == 2
    assert queue_many(session, messages, now=AT) == 3
    assert len(_rows(session)) == 5


@pytest.mark.parametrize(
    ("kind", "template", "key"),
    [
        ("letter", POINTS_EXPIRING, "x"),
        (MessageKind.EMAIL, "no_such_template", "x"),
        (MessageKind.EMAIL, POINTS_EXPIRING, ""),
        (MessageKind.EMAIL, POINTS_EXPIRING, "k" * 121),
    ],
)
def test_a_message_the_outbox_could_not_send_is_refused_when_queued(session, kind, template, key):
    with pytest.raises(ValueError):
        queue(session, kind, "ada@example.com", template, {}, key, AT, now=AT)
    assert _rows(session) == []


@dataclass
class Receiver:
    """A real HTTP server on loopback that records what it is sent."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    answer: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.received.append({"headers": dict(self.headers), "body": body})
            self.send_response(record.answer)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_port}/hooks/loyalty"
    yield record
    server.shutdown()
    server.server_close()


def test_a_webhook_is_posted_signed_and_a_receiver_that_checks_the_signature_accepts_it(
    session, receiver, database_url, tmp_path: Path
):
    settings = app_settings(
        database_url, LOYALTY_WEBHOOK_SECRET=SECRET, LOYALTY_OUTBOX_FILE=str(tmp_path / "out")
    )
    queue(
        session,
        MessageKind.WEBHOOK,
        receiver.url,
        "sale.committed",
        {"sale": "S-1"},
        "w-1",
        AT,
        now=AT,
    )

    report = send_outbox(session, backend_from_settings(settings), AT)

    assert (report.sent, report.failed) == (1, 0)
    [call] = receiver.received
    body = json.loads(call["body"])
    assert body["event"] == "sale.committed"
    assert body["data"] == {"sale": "S-1"}
    timestamp = call["headers"][TIMESTAMP_HEADER]
    # what a receiver computes with the shared secret, as the README describes it
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + call["body"], hashlib.sha256)
    assert call["headers"][SIGNATURE_HEADER] == f"v1={expected.hexdigest()}"
    assert abs(int(timestamp) - time.time()) < 60
    [message] = _rows(session)
    assert message.sent_at == AT


def test_a_webhook_the_receiver_refuses_is_kept_and_tried_again_later(
    session, receiver, database_url
):
    settings = app_settings(database_url, LOYALTY_WEBHOOK_SECRET=SECRET)
    receiver.answer = 503
    queue(session, MessageKind.WEBHOOK, receiver.url, "sale.committed", {}, "w-2", AT, now=AT)

    failed = send_outbox(session, backend_from_settings(settings), AT)
    too_soon = send_outbox(session, backend_from_settings(settings), AT + timedelta(seconds=30))
    receiver.answer = 200
    later = send_outbox(session, backend_from_settings(settings), AT + timedelta(minutes=2))

    assert (failed.failed, too_soon.sent + too_soon.failed, later.sent) == (1, 0, 1)
    assert len(receiver.received) == 2
    [message] = _rows(session)
    assert message.sent_at is not None
    assert message.attempts == 2


def test_sms_are_recorded_until_a_gateway_is_configured(session, database_url, tmp_path: Path):
    record = tmp_path / "outbox.jsonl"
    settings = app_settings(database_url, LOYALTY_OUTBOX_FILE=str(record))
    data = {"name": "Ada", "points": 5, "expires_on": "2026-05-31"}
    queue(session, MessageKind.SMS, "+447700900123", POINTS_EXPIRING, data, "s-1", AT, now=AT)

    assert send_outbox(session, backend_from_settings(settings), AT).sent == 1
    [line] = record.read_text().splitlines()
    assert json.loads(line)["channel"] == "sms"
    assert json.loads(line)["to"] == "+447700900123"


# --- job runs ---------------------------------------------------------------------------------


def test_each_job_run_is_recorded_with_its_outcome_and_duration(database_url, engine, tmp_path):
    settings = app_settings(database_url, LOYALTY_OUTBOX_FILE=str(tmp_path / "out"))
    with Session(engine) as session:
        before = session.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1)) or 0

    summary = jobs.run_job("send-outbox", AT, settings=settings)

    with Session(engine) as session:
        [run] = session.scalars(select(JobRun).where(JobRun.id > before)).all()
        session.delete(run)  # this test's database is shared: leave it as it was
        session.commit()
    assert (run.name, run.succeeded, run.summary) == ("send-outbox", True, summary)
    assert run.seconds >= 0


def test_a_job_that_fails_is_recorded_as_failed_with_its_error(database_url, engine, monkeypatch):
    def broken(*_args: object) -> str:
        raise RuntimeError("the disk is full")

    monkeypatch.setitem(jobs.JOBS, "expire-points", replace(jobs.JOBS["expire-points"], run=broken))
    with Session(engine) as session:
        before = session.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1)) or 0

    with pytest.raises(RuntimeError):
        jobs.run_job("expire-points", AT, settings=app_settings(database_url))

    with Session(engine) as session:
        [run] = session.scalars(select(JobRun).where(JobRun.id > before)).all()
        session.delete(run)
        session.commit()
    assert (run.succeeded, run.summary) == (False, "RuntimeError: the disk is full")
