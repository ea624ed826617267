"""Reminders of expiring points, the outbox that sends them (to a file, and to a real SMTP
server), and the jobs run in process, from the command line and through RQ on a real Redis."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.clock import FixedClock
from loyalty.db import make_engine, session_scope
from loyalty.jobs import services as jobs
from loyalty.ledger import services as ledger
from loyalty.ledger.jobs import queue_expiry_reminders
from loyalty.members.models import Member
from loyalty.members.services import erase, set_blocked
from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.sending import (
    MAX_ATTEMPTS,
    RecordingBackend,
    SmtpBackend,
    send_outbox,
)
from loyalty.program import ensure_program, update_program
from loyalty.settings import LookupKeys, Settings
from loyalty.tiers.services import create_tier, current_tier
from tests.cli import loyalty
from tests.conftest import (
    START,
    app_settings,
    drop_postgres_database,
    free_port,
    fresh_postgres_database,
)
from tests.factories import give_points, make_member, make_till, sell
from tests.mail import Inbox
from tests.mail import smtp_server as running_smtp

# Points earned on START (14 March 2026) last through 31 March 2027.
REMIND_AT = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # 21 days before: inside the 30 days


def _credit(session: Session, member: Member, points: int, at: datetime) -> None:
    give_points(session, member.id, points, at)


def _messages(session: Session, member: Member) -> list[OutboxMessage]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.member_id == member.id)
            .order_by(OutboxMessage.id)
        )
    )


def _consenting(session: Session, keys: LookupKeys, clock: FixedClock, **fields: Any) -> Member:
    member, _ = make_member(session, keys, clock, email_consent=True, **fields)
    return member


# --- reminders --------------------------------------------------------------------------------


def test_a_member_whose_points_expire_soon_is_reminded_once(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member = _consenting(session, keys, clock, name="Ada Lovelace")
    _credit(session, member, 100, clock.now())
    _credit(session, member, 40, clock.now())
    _credit(session, member, 70, clock.now() + timedelta(days=62))  # lasts through May 2027

    first = queue_expiry_reminders(session, REMIND_AT)
    again = queue_expiry_reminders(session, REMIND_AT + timedelta(hours=6))

    assert first >= 1
    assert again == 0
    [message] = _messages(session, member)
    assert (message.channel, message.template) == ("email", "points_expiring")
    assert message.recipient == member.email
    assert message.payload == {"name": "Ada Lovelace", "points": 140, "expires_on": "2027-03-31"}
    assert message.dedupe_key == f"points-expiring:{member.id}:2027-03-31"
    assert message.sent_at is None


def test_no_reminder_before_the_reminder_window_or_for_points_spent_already(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member = _consenting(session, keys, clock)
    spender = _consenting(session, keys, clock)
    _credit(session, member, 100, clock.now())
    _credit(session, spender, 100, clock.now())
    ledger.redeem(session, member_id=spender.id, points=100, reason="t", actor="t", now=clock.now())

    queue_expiry_reminders(session, datetime(2027, 2, 28, tzinfo=UTC))  # 31 days before
    queue_expiry_reminders(session, REMIND_AT)

    assert len(_messages(session, member)) == 1
    assert _messages(session, spender) == []


def test_only_members_who_consented_to_email_and_can_use_their_points_are_reminded(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    silent, _ = make_member(session, keys, clock)  # an email, but no consent
    blocked = _consenting(session, keys, clock)
    erased = _consenting(session, keys, clock)
    for member in (silent, blocked, erased):
        _credit(session, member, 100, clock.now())
    set_blocked(session, member_id=blocked.id, blocked=True, reason="t", actor="t", now=START)
    erase(session, member_id=erased.id, reason="asked", actor="t", now=START)
    session.flush()

    queue_expiry_reminders(session, REMIND_AT)

    assert [_messages(session, m) for m in (silent, blocked, erased)] == [[], [], []]


def test_the_last_day_told_is_the_programs_local_date(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(session, actor="t", now=clock.now(), timezone="America/New_York")
    member = _consenting(session, keys, clock)
    _credit(session, member, 100, clock.now())  # gone at midnight New York, 05:00 UTC

    queue_expiry_reminders(session, REMIND_AT)

    [message] = _messages(session, member)
    assert message.payload["expires_on"] == "2027-03-31"


def test_a_member_is_reminded_at_most_once_per_reminder_window(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    """With expiry by the day, points expire every day for a frequent shopper: one email per
    window, not one a day."""
    update_program(
        session, actor="t", now=clock.now(), expiry_policy="months_after_earning", expiry_months=1
    )
    member = _consenting(session, keys, clock)
    for day in range(60):
        _credit(session, member, 10, clock.now() + timedelta(days=day))
    first_run = clock.now() + timedelta(days=5)

    for day in range(40):
        queue_expiry_reminders(session, first_run + timedelta(days=day))

    sent = _messages(session, member)
    # 19 March: the lots earned 14-17 March last through 14-17 April, within the 30 days
    assert (sent[0].created_at, sent[0].payload["points"]) == (first_run, 40)
    assert sent[1].created_at == first_run + timedelta(days=30)
    assert [m.payload["expires_on"] for m in sent] == ["2026-04-14", "2026-04-18"]


def test_no_reminders_when_the_program_sends_none(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(session, actor="t", now=clock.now(), reminder_days=0)
    member = _consenting(session, keys, clock)
    _credit(session, member, 100, clock.now())
    assert queue_expiry_reminders(session, REMIND_AT) == 0
    assert _messages(session, member) == []


# --- sending ----------------------------------------------------------------------------------


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_recording_backend_writes_each_message_once_as_a_json_line(
    session: Session, keys: LookupKeys, clock: FixedClock, tmp_path: Path
):
    member = _consenting(session, keys, clock, name="Grace Hopper")
    _credit(session, member, 1_250, clock.now())
    queue_expiry_reminders(session, REMIND_AT)
    record = tmp_path / "instance" / "outbox-sent.jsonl"

    first = send_outbox(session, RecordingBackend(record), REMIND_AT, checkpoint=session.commit)
    again = send_outbox(session, RecordingBackend(record), REMIND_AT + timedelta(hours=1))

    mine = [line for line in _lines(record) if line["to"] == member.email]
    assert len(mine) == 1
    assert mine[0]["subject"] == "1,250 of your points expire after 31 March 2027"
    assert "Hello Grace Hopper" in mine[0]["text"]
    assert first.sent >= 1
    assert again.sent == 0
    [message] = _messages(session, member)
    assert (message.sent_at, message.attempts, message.last_error) == (REMIND_AT, 1, None)


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    with running_smtp() as served:
        yield served


def test_reminders_are_mailed_through_a_real_smtp_server(
    session: Session, keys: LookupKeys, clock: FixedClock, smtp_server: tuple[str, Inbox]
):
    url, inbox = smtp_server
    member = _consenting(session, keys, clock, name="Mary Seacole")
    _credit(session, member, 80, clock.now())
    queue_expiry_reminders(session, REMIND_AT)

    send_outbox(session, SmtpBackend(url, "points@shop.example"), REMIND_AT)

    mail = [m for m in inbox.messages if m[1] == [member.email]]
    assert len(mail) == 1
    sender, _, email = mail[0]
    assert sender == "points@shop.example"
    assert email["Subject"] == "80 of your points expire after 31 March 2027"
    assert email["To"] == member.email
    assert "Hello Mary Seacole" in email.get_payload()
    assert _messages(session, member)[0].sent_at == REMIND_AT


def test_a_failed_send_is_kept_with_its_error_and_tried_again_later(
    session: Session, keys: LookupKeys, clock: FixedClock, smtp_server: tuple[str, Inbox]
):
    url, inbox = smtp_server
    member = _consenting(session, keys, clock)
    _credit(session, member, 80, clock.now())
    queue_expiry_reminders(session, REMIND_AT)
    nobody_listening = SmtpBackend(f"smtp://127.0.0.1:{free_port()}", "points@shop.example")

    failed = send_outbox(session, nobody_listening, REMIND_AT)
    [message] = _messages(session, member)
    assert failed.failed >= 1
    assert message.sent_at is None
    assert message.attempts == 1
    assert "ConnectionRefusedError" in (message.last_error or "")
    assert message.available_at == REMIND_AT + timedelta(minutes=1)

    too_soon = send_outbox(session, SmtpBackend(url, "p@shop.example"), REMIND_AT)
    assert too_soon.sent == 0
    send_outbox(session, SmtpBackend(url, "p@shop.example"), REMIND_AT + timedelta(minutes=1))

    [message] = _messages(session, member)
    assert message.sent_at == REMIND_AT + timedelta(minutes=1)
    assert message.attempts == 2
    assert message.last_error is None
    assert [m[1] for m in inbox.messages].count([member.email]) == 1


def test_a_message_that_keeps_failing_is_given_up_after_the_last_attempt(
    session: Session, keys: LookupKeys, clock: FixedClock, tmp_path: Path
):
    member = _consenting(session, keys, clock)
    _credit(session, member, 80, clock.now())
    queue_expiry_reminders(session, REMIND_AT)
    unwritable = RecordingBackend(tmp_path)  # a directory: every write fails
    at = REMIND_AT

    for _ in range(MAX_ATTEMPTS + 3):
        send_outbox(session, unwritable, at)
        at += timedelta(hours=7)  # past the longest wait between attempts

    [message] = _messages(session, member)
    assert message.attempts == MAX_ATTEMPTS
    assert message.sent_at is None
    assert "IsADirectoryError" in (message.last_error or "")


# --- the jobs on a database that commits: in process, from the CLI, through RQ ---------------


@pytest.fixture(scope="module")
def committed_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: jobs run on their own connections and commit."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'loyalty.sqlite3'}"
    else:
        url = fresh_postgres_database(f"jobs_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ensure_program(session, START)
        update_program(session, actor="test", now=START, reminder_days=45)
    engine.dispose()
    yield url
    if backend == "postgresql":
        drop_postgres_database(url)


@dataclass(frozen=True)
class Seeded:
    expiring: int  # a member whose 100 points expired a month ago
    reminded: int  # a member whose 60 points expire within 45 days


def _seed(url: str, keys: LookupKeys) -> Seeded:
    """Two consenting members, dated from the real clock, as the jobs read it."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            clock = FixedClock(now)
            expiring = _consenting(session, keys, clock)
            reminded = _consenting(session, keys, clock)
            _credit(session, expiring, 100, now - timedelta(days=430))  # gone last month
            _credit(session, reminded, 60, now - timedelta(days=350))  # gone by next month
    finally:
        engine.dispose()
    return Seeded(expiring.id, reminded.id)


def _state(url: str, seeded: Seeded) -> tuple[int, int, bool]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            message = session.scalars(
                select(OutboxMessage).where(OutboxMessage.member_id == seeded.reminded)
            ).first()
            return (
                ledger.balance(session, seeded.expiring).available,
                ledger.balance(session, seeded.reminded).available,
                message is not None and message.sent_at is not None,
            )
    finally:
        engine.dispose()


def _settings(url: str, outbox_file: Path, redis_url: str | None = None) -> Settings:
    return app_settings(url, redis_url, LOYALTY_OUTBOX_FILE=outbox_file)


def test_without_redis_a_submitted_job_runs_at_once_in_process(
    committed_url: str, keys: LookupKeys, tmp_path: Path
):
    seeded = _seed(committed_url, keys)
    settings = _settings(committed_url, tmp_path / "sent.jsonl")

    done = [jobs.submit(name, settings=settings) for name in jobs.JOBS]

    assert [d.job_id for d in done] == [None] * len(jobs.JOBS)
    assert done[-1].describe().startswith("review-tiers: ")
    assert "grace periods started" in done[-1].describe()
    assert done[1].describe().startswith("expire-points: expired ")
    assert _state(committed_url, seeded) == (0, 60, True)
    assert ledger_is_consistent(committed_url)


def test_with_redis_unreachable_a_submitted_job_runs_at_once_instead_of_failing(
    committed_url: str, keys: LookupKeys, tmp_path: Path
):
    seeded = _seed(committed_url, keys)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = _settings(committed_url, tmp_path / "sent.jsonl", dead)

    done = jobs.submit("expire-points", settings=settings)

    assert done.job_id is None
    assert done.describe().startswith("expire-points: expired ")
    assert _state(committed_url, seeded)[0] == 0, "the points expired here and now"


def ledger_is_consistent(url: str) -> bool:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return ledger.check_ledger(session) == []
    finally:
        engine.dispose()


def test_with_redis_jobs_are_queued_and_run_by_an_rq_worker(
    committed_url: str,
    redis_url: str,
    keys: LookupKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    seeded = _seed(committed_url, keys)
    outbox_file = tmp_path / "sent.jsonl"
    settings = _settings(committed_url, outbox_file, redis_url)
    # the worker's jobs read the configuration from the environment, as on a server
    monkeypatch.setenv("LOYALTY_DATABASE_URL", committed_url)
    monkeypatch.setenv("LOYALTY_OUTBOX_FILE", str(outbox_file))
    queue = f"test-{uuid.uuid4().hex[:8]}"

    submitted = [jobs.submit(name, settings=settings, queue_name=queue) for name in jobs.JOBS]
    assert _state(committed_url, seeded) == (100, 60, False), "queued, not run"
    jobs.work(settings, burst=True, queue_name=queue, logging_level="WARNING")

    connection = Redis.from_url(redis_url)
    results = [Job.fetch(s.job_id or "", connection=connection) for s in submitted]
    assert [job.get_status() for job in results] == ["finished"] * len(jobs.JOBS)
    assert str(results[1].return_value()).startswith("expired 100 points from ")
    assert _state(committed_url, seeded) == (0, 60, True)
    assert any(line["to"].startswith("member") for line in _lines(outbox_file))
    assert ledger_is_consistent(committed_url)


def test_the_scheduling_worker_enqueues_every_job_through_rq(
    committed_url: str,
    redis_url: str,
    keys: LookupKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    seeded = _seed(committed_url, keys)
    outbox_file = tmp_path / "sent.jsonl"
    settings = _settings(committed_url, outbox_file, redis_url)
    monkeypatch.setenv("LOYALTY_DATABASE_URL", committed_url)
    monkeypatch.setenv("LOYALTY_OUTBOX_FILE", str(outbox_file))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    connection = Redis.from_url(redis_url)

    cron = jobs.scheduler(connection, queue)
    enqueued = cron.enqueue_jobs()
    frequent = jobs.jobs_to_run(daily=False)
    # the frequent jobs go at once; the daily review waits for its hour (03:30)
    assert [job.args for job in enqueued] == [(name,) for name in frequent]
    assert len(Queue(queue, connection=connection)) == len(frequent)
    (review,) = [job.to_dict() for job in cron.get_jobs() if job.args == ("review-tiers",)]
    assert (review["cron"], review["interval"]) == ("30 3 * * *", None)
    assert review["next_enqueue_time"] is not None
    jobs.work(settings, burst=True, queue_name=queue, logging_level="WARNING")

    assert _state(committed_url, seeded) == (0, 60, True)


# the command line


def test_run_jobs_runs_every_frequent_job_once_and_says_what_each_did(
    committed_url: str, keys: LookupKeys, tmp_path: Path
):
    seeded = _seed(committed_url, keys)
    outbox_file = tmp_path / "sent.jsonl"

    result = loyalty(committed_url, "run-jobs", LOYALTY_OUTBOX_FILE=str(outbox_file))
    again = loyalty(committed_url, "expire-points", LOYALTY_OUTBOX_FILE=str(outbox_file))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "unlock-points",
        "expire-points",
        "remind-expiring",
        "send-outbox",
        "generate-codes",
        "assign-coupons",
        "refund-expired-rewards",
    ]
    assert lines[1].startswith("expire-points: expired 100 points from 1 member,")
    assert lines[2].startswith("remind-expiring: queued 1 reminder ")
    assert lines[3].startswith("send-outbox: sent 1 message")
    assert lines[4] == "generate-codes: generated 0 coupon codes"
    assert lines[5] == "assign-coupons: gave 0 coupons to the members of marketers' lists"
    assert lines[6].startswith("refund-expired-rewards: gave back the points of 0 rewards")
    assert again.stdout.startswith("expired 0 points from 0 members")
    assert _state(committed_url, seeded) == (0, 60, True)
    assert loyalty(committed_url, "check-ledger").exit_code == 0


def test_run_jobs_daily_runs_the_tier_review(committed_url: str, keys: LookupKeys):
    engine = make_engine(committed_url)
    clock = FixedClock(START)
    with session_scope(engine) as session:
        member, _ = make_member(session, keys, clock)
        sell(session, make_till(session, clock), keys, clock, member=member)
        # a tier the sale could not reach when it was made: the review gives it
        create_tier(
            session, code="DAILY", name="Daily", rank=777, threshold=1, actor="test", now=START
        )
    engine.dispose()

    result = loyalty(committed_url, "run-jobs", "--daily")

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith("review-tiers: ")
    # this member at least (other tests' members with sales may reach the tier too)
    assert re.match(r"review-tiers: [1-9][\d,]* upgrades?, ", line), line
    engine = make_engine(committed_url)
    with Session(engine) as session:
        assert current_tier(session, member.id, START) is not None
    engine.dispose()


def test_each_job_has_its_own_command(committed_url: str, keys: LookupKeys, tmp_path: Path):
    _seed(committed_url, keys)
    outbox_file = str(tmp_path / "sent.jsonl")
    said = {
        command: loyalty(committed_url, command, LOYALTY_OUTBOX_FILE=outbox_file)
        for command in ("unlock-points", "expire-points", "remind-expiring", "send-outbox")
    }
    assert all(result.exit_code == 0 for result in said.values())
    assert said["unlock-points"].stdout.startswith("unlocked 0 pending points for 0 members")
    assert said["expire-points"].stdout.startswith("expired 100 points from 1 member,")
    assert said["remind-expiring"].stdout.startswith("queued 1 reminder ")
    assert said["send-outbox"].stdout.startswith("sent 1 message")


def test_the_worker_command_needs_redis_and_says_so(committed_url: str):
    result = loyalty(committed_url, "worker")
    assert result.exit_code == 1
    assert "LOYALTY_REDIS_URL is not set" in result.stderr
    assert "Traceback" not in result.output


def test_the_worker_command_runs_queued_jobs(
    committed_url: str,
    redis_url: str,
    keys: LookupKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    seeded = _seed(committed_url, keys)
    outbox_file = tmp_path / "sent.jsonl"
    monkeypatch.setenv("LOYALTY_DATABASE_URL", committed_url)
    monkeypatch.setenv("LOYALTY_OUTBOX_FILE", str(outbox_file))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings = _settings(committed_url, outbox_file, redis_url)
    for name in jobs.JOBS:
        jobs.submit(name, settings=settings, queue_name=queue)

    result = loyalty(
        committed_url, "worker", "--burst", "--queue", queue, LOYALTY_REDIS_URL=redis_url
    )

    assert result.exit_code == 0, result.output
    assert _state(committed_url, seeded) == (0, 60, True)


def test_points_still_pending_are_not_in_a_reminder_to_spend_them(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    from loyalty.program import update_program  # noqa: PLC0415
    from loyalty.rules.pricing import BasketLine  # noqa: PLC0415
    from tests.factories import make_till, sell  # noqa: PLC0415

    update_program(session, actor="test", now=clock.now(), pending_days=400)
    member = _consenting(session, keys, clock)
    _credit(session, member, 100, clock.now())  # spendable, expires end of March 2027
    sell(
        session,
        make_till(session, clock),
        keys,
        clock,
        member=member,
        lines=[BasketLine("TV", 1, 50_000)],
    )  # 500 points, pending past their own expiry
    queue_expiry_reminders(session, REMIND_AT)
    [message] = _messages(session, member)
    assert message.payload["points"] == 100


def test_reminders_are_queued_a_batch_of_members_at_a_time_and_each_batch_is_committed(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    members = [_consenting(session, keys, clock) for _ in range(5)]
    for member in members:
        _credit(session, member, 10, clock.now())
    commits: list[int] = []

    queued = queue_expiry_reminders(
        session, REMIND_AT, batch_size=2, checkpoint=lambda: commits.append(1)
    )

    assert queued >= 5
    assert all(len(_messages(session, member)) == 1 for member in members)
    assert len(commits) >= 3, "5 members in batches of 2"
