"""The ledger's promises (DESIGN.md) at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.models import EntryKind, PointAccount, PointEntry, PointLot
from loyalty.program import update_program
from loyalty.settings import LookupKeys
from tests.factories import give_points, make_member


def _credit(session: Session, member_id: int, points: int, clock: FixedClock) -> int:
    return give_points(session, member_id, points, clock.now())


def _remaining_by_entry(session: Session, member_id: int) -> dict[int, int]:
    # Column reads, not ORM objects: an identity map would hand back the first values seen.
    rows = session.execute(
        select(PointLot.entry_id, PointLot.remaining).where(PointLot.member_id == member_id)
    )
    return dict(rows.all())


def test_a_new_member_starts_with_nothing(session: Session, keys: LookupKeys, clock: FixedClock):
    member, _ = make_member(session, keys, clock)
    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=0)


def test_points_expire_twelve_months_after_the_month_they_were_earned(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    entry = _credit(session, member.id, 100, clock)
    session.flush()
    lot = session.scalars(select(PointLot).where(PointLot.entry_id == entry)).one()
    # earned 14 March 2026 -> lasts through March 2027
    assert lot.expires_at == datetime(2027, 4, 1, tzinfo=UTC)


def test_redemption_spends_the_lots_that_expire_first(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    older = _credit(session, member.id, 100, clock)
    clock.advance(timedelta(days=62))
    newer = _credit(session, member.id, 100, clock)
    ledger.redeem(
        session, member_id=member.id, points=130, reason="test", actor="test", now=clock.now()
    )
    session.flush()
    remaining = _remaining_by_entry(session, member.id)
    assert remaining == {older: 0, newer: 70}
    assert ledger.balance(session, member.id).available == 70


def test_redeeming_more_than_available_changes_nothing(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member.id, 50, clock)
    with pytest.raises(NotEnoughPoints):
        ledger.redeem(
            session, member_id=member.id, points=51, reason="test", actor="test", now=clock.now()
        )
    assert ledger.balance(session, member.id).available == 50
    kinds = session.scalars(select(PointEntry.kind).where(PointEntry.member_id == member.id))
    assert list(kinds) == [EntryKind.BONUS]


def test_reversing_a_redemption_refills_the_very_lots_it_drew(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    first = _credit(session, member.id, 30, clock)
    clock.advance(timedelta(days=40))
    second = _credit(session, member.id, 30, clock)
    redemption = ledger.redeem(
        session, member_id=member.id, points=50, reason="test", actor="test", now=clock.now()
    )
    ledger.reverse_redemption(
        session, redemption_id=redemption.entry_id, reason="undo", actor="test", now=clock.now()
    )
    session.flush()
    lots = _remaining_by_entry(session, member.id)
    assert lots == {first: 30, second: 30}


def test_a_debt_is_paid_off_by_the_next_points_earned(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member.id, 10, clock)
    ledger.redeem(
        session, member_id=member.id, points=10, reason="spent", actor="test", now=clock.now()
    )
    # a sale's earned points taken back after they were spent: the member owes 10
    session.execute(
        update(PointAccount)
        .where(PointAccount.member_id == member.id)
        .values(available=PointAccount.available - 10)
    )
    session.add(
        PointEntry(
            member_id=member.id,
            kind=EntryKind.REVERSE,
            points=-10,
            pending_points=0,
            reason="returned",
            actor="test",
            created_at=clock.now(),
        )
    )
    session.flush()
    assert ledger.balance(session, member.id).available == -10
    _credit(session, member.id, 25, clock)
    session.flush()
    assert ledger.balance(session, member.id).available == 15
    assert ledger.check_ledger(session) == []


def test_check_ledger_finds_a_balance_that_disagrees_with_its_entries(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member.id, 40, clock)
    session.execute(
        update(PointAccount).where(PointAccount.member_id == member.id).values(available=41)
    )
    problems = ledger.check_ledger(session)
    assert [p.member_id for p in problems] == [member.id, member.id]
    assert "entries say available=40" in problems[0].problem
    # put it right so the fixture's own check passes
    session.execute(
        update(PointAccount).where(PointAccount.member_id == member.id).values(available=40)
    )


def test_check_ledger_finds_lots_that_disagree_with_the_balance(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    entry = _credit(session, member.id, 40, clock)
    session.flush()
    session.execute(update(PointLot).where(PointLot.entry_id == entry).values(remaining=39))
    problems = ledger.check_ledger(session)
    assert len(problems) == 1
    assert "lots hold unlocked=39" in problems[0].problem
    session.execute(update(PointLot).where(PointLot.entry_id == entry).values(remaining=40))


def test_history_pages_newest_first(session: Session, keys: LookupKeys, clock: FixedClock):
    member, _ = make_member(session, keys, clock)
    entries = [_credit(session, member.id, points, clock) for points in (1, 2, 3, 4, 5)]
    first = ledger.history(session, member.id, before_id=None, limit=2)
    second = ledger.history(session, member.id, before_id=first[-1].id, limit=2)
    third = ledger.history(session, member.id, before_id=second[-1].id, limit=2)
    assert [e.points for e in first + second + third] == [5, 4, 3, 2, 1]
    assert {e.id for e in first + second + third} == set(entries)


def test_lots_never_expire_under_the_never_policy(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(session, actor="test", now=clock.now(), expiry_policy="never")
    member, _ = make_member(session, keys, clock)
    entry = _credit(session, member.id, 5, clock)
    session.flush()
    lot = session.scalars(select(PointLot).where(PointLot.entry_id == entry)).one()
    assert lot.expires_at is None
