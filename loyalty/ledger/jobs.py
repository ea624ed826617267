"""The ledger's periodic jobs: expire points, unlock pending points, remind members of points
about to expire. loyalty/jobs.py runs them (in process, or through RQ when Redis is set).

Every job is set-based: it walks the members in batches by id (keyset paging, so each batch
costs the same however far the walk has gone), and does each batch in a handful of statements
(INSERT … SELECT … GROUP BY, UPDATE … FROM), never a statement per member. Each batch first
locks its members' accounts, in member order (`ledger.lock_accounts`), the ledger's rule that
keeps a till spending the same points at the same moment from reading lots half changed.

`checkpoint` (the caller's commit) is called after each batch, so a batch's locks are held for
that batch only; without it the whole run is one transaction. Every job can be run again at any
time: what it has done it does not do twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from loyalty.clock import as_utc
from loyalty.ledger.expiry import last_day
from loyalty.ledger.models import EntryKind, LotDraw, PointAccount, PointEntry, PointLot
from loyalty.ledger.services import (
    MemberScope,
    Moved,
    apply_entries_to_accounts,
    entries_from_lots,
    latest_entry_id,
    lock_accounts,
    matured,
    member_range,
    members_in,
    unlock_matured,
)
from loyalty.members.models import Member, MemberStatus
from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.services import Message, MessageKind, queue_many
from loyalty.messaging.templates import POINTS_EXPIRING
from loyalty.program import ProgramSettings, get_program

DEFAULT_BATCH_SIZE = 5_000
EXPIRY_ACTOR = "system:expiry"

Progress = Callable[[int], None]
"""Told how many members each batch covered (a progress bar's update)."""

_accounts = cast("Table", PointAccount.__table__)
_entries = cast("Table", PointEntry.__table__)
_lots = cast("Table", PointLot.__table__)
_draws = cast("Table", LotDraw.__table__)
_members = cast("Table", Member.__table__)
_outbox = cast("Table", OutboxMessage.__table__)


def expired(now: datetime) -> Callable[[FromClause], ColumnElement[bool]]:
    """Lots past their expiry that still hold points. Lots that never expire have no
    expires_at, which no comparison matches."""
    return lambda lots: and_(lots.c.expires_at <= now, lots.c.remaining > 0)


def _batches(
    session: Session,
    candidates: Callable[[int], Any],
    *,
    batch_size: int,
) -> Any:
    """Yield (after, last) member-id ranges holding up to `batch_size` members each, as
    `candidates(after)` (a query of member ids above `after`, in order) finds them."""
    after = 0
    while True:
        page = candidates(after).limit(batch_size).subquery()
        last = session.connection().execute(select(func.max(page.c.member_id))).scalar()
        if last is None:
            return
        yield after, int(last)
        after = int(last)


def _run_batches(
    session: Session,
    candidates: Callable[[int], Any],
    do_batch: Callable[[MemberScope], tuple[int, Moved]],
    *,
    batch_size: int,
    checkpoint: Callable[[], None] | None,
    on_batch: Progress | None,
) -> Moved:
    if batch_size < 1:
        msg = "a batch holds at least one member"
        raise ValueError(msg)
    session.flush()  # the statements below go through the connection, past the autoflush
    done = Moved()
    for after, last in _batches(session, candidates, batch_size=batch_size):
        members, moved = do_batch(member_range(after, last))
        done += moved
        if checkpoint is not None:
            checkpoint()
        if on_batch is not None:
            on_batch(members)
    return done


# --- expiry -----------------------------------------------------------------------------------


def members_with_expired_points(session: Session, now: datetime) -> int:
    """How many members the next expiry run will touch (for a progress bar's length)."""
    return int(
        session.connection()
        .execute(select(func.count(func.distinct(_lots.c.member_id))).where(expired(now)(_lots)))
        .scalar_one()
    )


def _expire_batch(session: Session, scope: MemberScope, now: datetime) -> tuple[int, Moved]:
    connection = session.connection()
    locked = lock_accounts(session, scope, with_lots=expired(now))
    if not locked:
        return 0, Moved()
    scope = members_in(locked)
    lots = _lots.alias("lot")
    is_expired = and_(scope(lots.c.member_id), expired(now)(lots))
    after_entry = latest_entry_id(session)
    # Spendable lots come off `available`; lots still pending come off `pending`.
    written = connection.execute(
        entries_from_lots(
            kind=EntryKind.EXPIRE,
            points=-func.sum(case((lots.c.unlocked.is_(True), lots.c.remaining), else_=0)),
            pending_points=-func.sum(case((lots.c.unlocked.is_(False), lots.c.remaining), else_=0)),
            reason="points expired",
            actor=EXPIRY_ACTOR,
            now=now,
            lots=lots,
            where=is_expired,
            having=func.sum(lots.c.remaining) > 0,
        )
    ).all()
    # Which lots each entry took, so the history can say where the points went.
    connection.execute(
        insert(_draws).from_select(
            ["entry_id", "lot_id", "points"],
            select(_entries.c.id, lots.c.id, lots.c.remaining)
            .join_from(lots, _entries, _entries.c.member_id == lots.c.member_id)
            .where(
                is_expired,
                _entries.c.id > after_entry,
                _entries.c.kind == EntryKind.EXPIRE.value,
                scope(_entries.c.member_id),
            ),
        )
    )
    apply_entries_to_accounts(
        session, scope=scope, kind=EntryKind.EXPIRE, after_entry=after_entry, now=now
    )
    emptied = connection.execute(
        update(_lots).where(scope(_lots.c.member_id), expired(now)(_lots)).values(remaining=0)
    ).rowcount
    return len(locked), Moved(
        members=len(written),
        points=sum(row.points for row in written),
        pending_points=sum(row.pending_points for row in written),
        lots=emptied,
    )


def expire_points(
    session: Session,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoint: Callable[[], None] | None = None,
    on_batch: Progress | None = None,
) -> Moved:
    """Expire every lot whose expiry has come (`expires_at <= now`) and still holds points: one
    `expire` entry per member (points -spendable, pending_points -pending), the lots it took
    recorded as draws, the lots emptied and the accounts brought in line. Running it again
    expires nothing twice: an emptied lot holds nothing to expire."""

    def candidates(after: int) -> Any:
        return (
            select(_lots.c.member_id)
            .where(_lots.c.member_id > after, expired(now)(_lots))
            .distinct()
            .order_by(_lots.c.member_id)
        )

    return _run_batches(
        session,
        candidates,
        lambda scope: _expire_batch(session, scope, now),
        batch_size=batch_size,
        checkpoint=checkpoint,
        on_batch=on_batch,
    )


# --- pending points ---------------------------------------------------------------------------


def _has_matured_lot(now: datetime) -> ColumnElement[bool]:
    lots = _lots.alias("lot")
    return exists().where(lots.c.member_id == _accounts.c.member_id, matured(now)(lots))


def members_with_matured_points(session: Session, now: datetime) -> int:
    return int(
        session.connection()
        .execute(
            select(func.count())
            .select_from(_accounts)
            .where(_accounts.c.pending > 0, _has_matured_lot(now))
        )
        .scalar_one()
    )


def _unlock_batch(session: Session, scope: MemberScope, now: datetime) -> tuple[int, Moved]:
    locked = lock_accounts(
        session, scope, with_lots=matured(now), accounts_where=_accounts.c.pending > 0
    )
    if not locked:
        return 0, Moved()
    return len(locked), unlock_matured(session, scope=members_in(locked), now=now)


def unlock_points(
    session: Session,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoint: Callable[[], None] | None = None,
    on_batch: Progress | None = None,
) -> Moved:
    """Make pending points whose time has come (`unlocks_at <= now`) spendable: one `unlock`
    entry per member. Only accounts with pending points are looked at."""

    def candidates(after: int) -> Any:
        return (
            select(_accounts.c.member_id)
            .where(
                _accounts.c.member_id > after,
                _accounts.c.pending > 0,
                _has_matured_lot(now),
            )
            .order_by(_accounts.c.member_id)
        )

    return _run_batches(
        session,
        candidates,
        lambda scope: _unlock_batch(session, scope, now),
        batch_size=batch_size,
        checkpoint=checkpoint,
        on_batch=on_batch,
    )


# --- reminders --------------------------------------------------------------------------------


def _reminder(program: ProgramSettings, row: Any, now: datetime) -> Message:
    member_id, email, name, points, first = row
    expires_on = last_day(as_utc(first), program.zone).isoformat()
    return Message(
        kind=MessageKind.EMAIL,
        recipient=email,
        template=POINTS_EXPIRING,
        data={"name": name, "points": int(points), "expires_on": expires_on},
        dedupe_key=f"points-expiring:{member_id}:{expires_on}",
        due_at=now,
        member_id=member_id,
    )


def queue_expiry_reminders(
    session: Session,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoint: Callable[[], None] | None = None,
) -> int:
    """Queue one email per member whose points expire within the program's `reminder_days`:
    how many points (those lots' remaining) and the last day to spend the first of them.

    Only members who consented to email and have an address, and who are active. The outbox's
    dedupe key (member and date) makes a second run queue nothing twice; a member reminded in
    the last `reminder_days` is not reminded again (with expiry by the day, a frequent shopper
    would otherwise have points expiring - and a reminder - every day). Set-based, a batch of
    members at a time (one query finds the batch's reminders, one statement queues them through
    the outbox's queue), committed by `checkpoint` after each. Returns how many were queued."""
    program = get_program(session)
    if program.reminder_days <= 0:
        return 0
    horizon = now + timedelta(days=program.reminder_days)
    # Only spendable points: a reminder to spend points that are still pending would mislead.
    soon = and_(
        _lots.c.unlocked.is_(True),
        _lots.c.remaining > 0,
        _lots.c.expires_at > now,
        _lots.c.expires_at <= horizon,
    )

    def candidates(after: int) -> Any:
        return (
            select(_lots.c.member_id)
            .where(_lots.c.member_id > after, soon)
            .distinct()
            .order_by(_lots.c.member_id)
        )

    reminded_lately = exists().where(
        _outbox.c.member_id == _members.c.id,
        _outbox.c.template == POINTS_EXPIRING,
        _outbox.c.created_at > now - timedelta(days=program.reminder_days),
    )
    queued = 0
    session.flush()
    for after, last in _batches(session, candidates, batch_size=batch_size):
        in_batch = and_(_lots.c.member_id > after, _lots.c.member_id <= last)
        per_member = (
            select(
                _lots.c.member_id.label("member_id"),
                func.sum(_lots.c.remaining).label("points"),
                func.min(_lots.c.expires_at).label("first"),
            )
            .where(soon, in_batch)
            .group_by(_lots.c.member_id)
            .subquery("expiring")
        )
        due = session.connection().execute(
            select(
                _members.c.id,
                _members.c.email,
                _members.c.name,
                per_member.c.points,
                per_member.c.first,
            )
            .join_from(per_member, _members, _members.c.id == per_member.c.member_id)
            .where(
                _members.c.status == MemberStatus.ACTIVE.value,
                _members.c.email_consent_at.is_not(None),
                _members.c.email.is_not(None),
                ~reminded_lately,
            )
        )
        queued += queue_many(session, [_reminder(program, row, now) for row in due], now=now)
        if checkpoint is not None:
            checkpoint()
    return queued
