"""Manual point adjustments by staff, on SQLite and PostgreSQL: always audited, never a debt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.clock import FixedClock
from loyalty.errors import InsufficientPoints, InvalidInput, NotFound
from loyalty.ledger import services as ledger
from loyalty.ledger.adjustments import MAX_ADJUSTMENT, adjust_points
from loyalty.ledger.models import EntryKind, PointEntry, PointLot
from loyalty.members.models import Member
from loyalty.members.services import erase, set_blocked
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from tests.factories import make_member, make_till, sell

STAFF = "staff:7:Grace at head office"


def _member_with(session: Session, keys: LookupKeys, clock: FixedClock, points: int) -> Member:
    """A member who earned `points` at a till (1 point per 1.00)."""
    member, _ = make_member(session, keys, clock)
    if points:
        till = make_till(session, clock)
        sell(session, till, keys, clock, member=member, lines=[BasketLine("TEA", 1, points * 100)])
    return member


def _adjust(session: Session, clock: FixedClock, member: Member, points: int, reason: str):
    return adjust_points(
        session, member_id=member.id, points=points, reason=reason, actor=STAFF, now=clock.now()
    )


def _audits(session: Session, member: Member) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "points.adjust", AuditEntry.subject_id == str(member.id))
            .order_by(AuditEntry.id)
        )
    )


def test_staff_add_points_as_a_new_lot_that_expires_like_any_other(session, keys, clock):
    member = _member_with(session, keys, clock, 100)

    done = _adjust(session, clock, member, 250, "  goodwill: till was down  ")

    assert (done.before, done.after) == (ledger.Balance(100, 0), ledger.Balance(350, 0))
    assert ledger.balance(session, member.id) == ledger.Balance(350, 0)
    entry = session.get(PointEntry, done.entry_id)
    assert (entry.kind, entry.points, entry.actor) == (EntryKind.ADJUST, 250, STAFF)
    assert entry.reason == "goodwill: till was down"
    lot = session.scalars(select(PointLot).where(PointLot.entry_id == done.entry_id)).one()
    assert (lot.points, lot.remaining) == (250, 250)
    assert lot.expires_at == datetime(2027, 4, 1, tzinfo=UTC)  # earned March 2026: 12 months


def test_staff_remove_points_from_the_lots_that_expire_first(session, keys, clock):
    member = _member_with(session, keys, clock, 100)
    clock.advance(timedelta(days=40))  # a second lot, expiring a month later
    _adjust(session, clock, member, 50, "compensation for a broken item")

    done = _adjust(session, clock, member, -120, "duplicate sale entered twice")

    assert (done.before, done.after) == (ledger.Balance(150, 0), ledger.Balance(30, 0))
    entry = session.get(PointEntry, done.entry_id)
    assert (entry.kind, entry.points) == (EntryKind.ADJUST, -120)
    remaining = session.scalars(
        select(PointLot.remaining).where(PointLot.member_id == member.id).order_by(PointLot.id)
    ).all()
    assert remaining == [0, 30]


def test_every_adjustment_is_audited_with_who_when_why_and_the_balance_before_and_after(
    session, keys, clock
):
    member = _member_with(session, keys, clock, 40)

    added = _adjust(session, clock, member, 10, "birthday gesture")
    clock.advance(timedelta(hours=2))
    removed = _adjust(session, clock, member, -25, "points given by mistake")

    first, second = _audits(session, member)
    assert first.actor == STAFF
    assert first.created_at == clock.now() - timedelta(hours=2)
    assert first.details == {
        "entry_id": added.entry_id,
        "points": 10,
        "reason": "birthday gesture",
        "before": {"available": 40, "pending": 0},
        "after": {"available": 50, "pending": 0},
    }
    assert second.created_at == clock.now()
    assert second.details["points"] == -25
    assert second.details["before"] == {"available": 50, "pending": 0}
    assert second.details["after"] == {"available": 25, "pending": 0}
    assert second.details["entry_id"] == removed.entry_id


def test_staff_cannot_remove_more_than_the_member_has_and_nothing_changes(session, keys, clock):
    member = _member_with(session, keys, clock, 30)
    entries_before = session.scalar(select(func.count()).select_from(PointEntry))

    with pytest.raises(InsufficientPoints) as refused:
        _adjust(session, clock, member, -31, "closing the account")

    assert refused.value.field == "points"
    assert "30 points available" in refused.value.detail
    assert "debt" in refused.value.detail
    assert ledger.balance(session, member.id) == ledger.Balance(30, 0)
    assert session.scalar(select(func.count()).select_from(PointEntry)) == entries_before
    assert _audits(session, member) == []


def test_points_added_to_a_member_who_owes_pay_the_debt_first(session, keys, clock):
    member, _ = make_member(session, keys, clock)
    till = make_till(session, clock)
    sell(
        session,
        till,
        keys,
        clock,
        member=member,
        external_id="earn",
        lines=[BasketLine("PEN", 1, 1000)],
    )
    sell(
        session, till, keys, clock, member=member, redeem=10, lines=[BasketLine("PAD", 1, 500)]
    )  # spends the 10, earns 4
    record_return(
        session,
        terminal=till.terminal,
        sale_external_id="earn",
        request=ReturnRequest("ret", [("PEN", 1)]),
        now=clock.now(),
    )
    assert ledger.balance(session, member.id).available == -6

    with pytest.raises(InsufficientPoints):
        _adjust(session, clock, member, -1, "cannot deepen a debt")
    done = _adjust(session, clock, member, 10, "settling a complaint")

    assert (done.before.available, done.after.available) == (-6, 4)
    lot = session.scalars(select(PointLot).where(PointLot.entry_id == done.entry_id)).one()
    assert (lot.points, lot.remaining) == (10, 4)


def test_a_blocked_members_balance_can_still_be_corrected(session, keys, clock):
    member = _member_with(session, keys, clock, 20)
    set_blocked(
        session,
        member_id=member.id,
        blocked=True,
        reason="fraud check",
        actor="test",
        now=clock.now(),
    )

    done = _adjust(session, clock, member, -20, "points from a fraudulent sale")

    assert done.after == ledger.Balance(0, 0)


def test_unknown_and_erased_members_are_not_found(session, keys, clock):
    member = _member_with(session, keys, clock, 20)
    erase(
        session, member_id=member.id, reason="asked to be forgotten", actor="test", now=clock.now()
    )

    with pytest.raises(NotFound):
        _adjust(session, clock, member, 5, "a late goodwill gesture")
    with pytest.raises(NotFound):
        adjust_points(
            session, member_id=2**62, points=5, reason="nobody", actor=STAFF, now=clock.now()
        )
    assert ledger.balance(session, member.id).available == 20


@pytest.mark.parametrize(
    ("points", "reason", "field"),
    [
        (0, "nothing at all", "points"),
        (MAX_ADJUSTMENT + 1, "too generous", "points"),
        (-MAX_ADJUSTMENT - 1, "too harsh", "points"),
        (True, "a boolean is not a number", "points"),
        (5, "", "reason"),
        (5, "  ok  ", "reason"),
        (5, "x" * 201, "reason"),
    ],
)
def test_absurd_adjustments_are_refused_with_the_field_named(
    session, keys, clock, points, reason, field
):
    member = _member_with(session, keys, clock, 10)

    with pytest.raises(InvalidInput) as refused:
        _adjust(session, clock, member, points, reason)

    assert refused.value.field == field
    assert ledger.balance(session, member.id) == ledger.Balance(10, 0)


def test_the_largest_adjustment_allowed_goes_through(session, keys, clock):
    member = _member_with(session, keys, clock, 0)

    done = _adjust(session, clock, member, MAX_ADJUSTMENT, "migrated balance, old scheme")

    assert done.after.available == MAX_ADJUSTMENT
    assert _adjust(session, clock, member, -MAX_ADJUSTMENT, "migrated twice").after.available == 0


def test_a_long_staff_name_is_cut_to_fit_and_keeps_the_staff_id(session, keys, clock):
    member = _member_with(session, keys, clock, 0)
    actor = "staff:12:" + "A Very Long Name " * 8

    done = adjust_points(
        session, member_id=member.id, points=5, reason="a long name", actor=actor, now=clock.now()
    )

    entry = session.get(PointEntry, done.entry_id)
    assert entry.actor.startswith("staff:12:")
    assert len(entry.actor) == 80
    assert _audits(session, member)[0].actor == entry.actor
