"""Pending points: earned on a sale, visible at once, spendable only when the pending period is
over (the unlock job, or a redemption by the member, unlocks them); a return inside the period
takes them back before anything else. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.checkout.identify import identify
from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.checkout.services import Basket, quote
from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.adjustments import adjust_points
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.jobs import unlock_points
from loyalty.ledger.models import PointEntry, PointLot
from loyalty.ledger.services import Balance
from loyalty.members.models import Member
from loyalty.program import update_program
from loyalty.results import stored
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from tests.conftest import unique
from tests.factories import Till, give_points, make_member, make_till, sell

PENDING_DAYS = 14


@pytest.fixture
def pending_program(session: Session, clock: FixedClock) -> None:
    update_program(session, actor="test", now=clock.now(), pending_days=PENDING_DAYS)


def _bonus(session: Session, member: Member, points: int, clock: FixedClock) -> None:
    give_points(session, member.id, points, clock.now())


def _buy(
    session: Session,
    till: Till,
    keys: LookupKeys,
    clock: FixedClock,
    member: Member,
    occurred_at: datetime | None = None,
) -> str:
    """A sale of 10.00 (10 points); its external id."""
    recorded = sell(
        session,
        till,
        keys,
        clock,
        member=member,
        lines=[BasketLine("TEA", 2, 500)],
        occurred_at=occurred_at,
    )
    return str(recorded.result.external_id)


def _return(
    session: Session, till: Till, clock: FixedClock, sale: str, quantity: int = 2
) -> dict[str, object]:
    recorded = record_return(
        session,
        terminal=till.terminal,
        sale_external_id=sale,
        request=ReturnRequest(external_id=unique("ret"), lines=[("TEA", quantity)]),
        now=clock.now(),
    )
    session.flush()
    return recorded.result


def _redeem(session: Session, member: Member, points: int, clock: FixedClock) -> ledger.Posted:
    return ledger.redeem(
        session, member_id=member.id, points=points, reason="test", actor="test", now=clock.now()
    )


def _entries(session: Session, member: Member) -> list[tuple[str, int, int]]:
    rows = session.execute(
        select(PointEntry.kind, PointEntry.points, PointEntry.pending_points)
        .where(PointEntry.member_id == member.id)
        .order_by(PointEntry.id)
    )
    return [(kind, points, pending) for kind, points, pending in rows]


def _consistent(session: Session) -> None:
    session.flush()
    assert ledger.check_ledger(session) == []


@pytest.mark.usefixtures("pending_program")
def test_points_earned_on_a_sale_are_pending_visible_and_not_spendable(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)

    _buy(session, till, keys, clock, member)

    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=10)
    assert _entries(session, member) == [("earn", 0, 10)]
    with pytest.raises(NotEnoughPoints):
        _redeem(session, member, 10, clock)
    clock.advance(timedelta(days=PENDING_DAYS) - timedelta(seconds=1))
    with pytest.raises(NotEnoughPoints):
        _redeem(session, member, 1, clock)
    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=10)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_bonus_points_that_come_from_no_sale_are_spendable_at_once(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _bonus(session, member, 25, clock)
    assert ledger.balance(session, member.id) == ledger.Balance(available=25, pending=0)


@pytest.mark.usefixtures("pending_program")
def test_a_sale_recorded_after_its_pending_period_earns_spendable_points(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    """A till that was offline for weeks: the points' waiting time ran from the sale."""
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member, occurred_at=clock.now() - timedelta(days=20))
    assert ledger.balance(session, member.id) == ledger.Balance(available=10, pending=0)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_the_unlock_job_makes_matured_points_spendable_once(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    later, _ = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=3))
    _buy(session, till, keys, clock, later)

    clock.advance(timedelta(days=PENDING_DAYS - 3))  # the first sale's points have matured
    unlock_points(session, clock.now())
    _consistent(session)
    again = unlock_points(session, clock.now())

    assert ledger.balance(session, member.id) == ledger.Balance(available=10, pending=0)
    assert _entries(session, member) == [("earn", 0, 10), ("unlock", 10, -10)]
    assert ledger.balance(session, later.id) == ledger.Balance(available=0, pending=10)
    assert again.members == 0
    _redeem(session, member, 10, clock)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_the_unlock_job_walks_members_in_batches(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    members = [make_member(session, keys, clock)[0] for _ in range(5)]
    for member in members:
        _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))
    batches: list[int] = []

    unlock_points(session, clock.now(), batch_size=2, on_batch=batches.append)

    assert all(ledger.balance(session, m.id) == ledger.Balance(10, 0) for m in members)
    assert all(size <= 2 for size in batches)
    assert sum(batches) >= len(members)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_a_redemption_spends_points_the_moment_they_mature_without_the_job(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))

    posted = _redeem(session, member, 10, clock)

    assert posted.balance == ledger.Balance(available=0, pending=0)
    assert posted.unlocked == 10
    assert [kind for kind, *_ in _entries(session, member)] == ["earn", "unlock", "redeem"]
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_a_redemption_the_balance_covers_still_unlocks_matured_points(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _bonus(session, member, 50, clock)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))

    posted = _redeem(session, member, 20, clock)

    assert posted.balance == ledger.Balance(available=40, pending=0)
    assert posted.unlocked == 10
    assert ledger.balance(session, member.id) == posted.balance
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_a_return_inside_the_window_cancels_pending_points_first(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _bonus(session, member, 50, clock)
    sale = _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=2))

    result = stored(_return(session, till, clock, sale))

    assert result["points_reversed"] == 10
    assert ledger.balance(session, member.id) == ledger.Balance(available=50, pending=0)
    assert _entries(session, member)[-1] == ("reverse", 0, -10)
    _consistent(session)
    clock.advance(timedelta(days=PENDING_DAYS))
    assert unlock_points(session, clock.now()).points == 0
    assert ledger.balance(session, member.id) == ledger.Balance(available=50, pending=0)


@pytest.mark.usefixtures("pending_program")
def test_partial_returns_inside_the_window_take_from_pending_and_add_up(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    sale = _buy(session, till, keys, clock, member)

    _return(session, till, clock, sale, quantity=1)
    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=5)
    _consistent(session)
    clock.advance(timedelta(days=PENDING_DAYS))
    unlock_points(session, clock.now())
    assert ledger.balance(session, member.id) == ledger.Balance(available=5, pending=0)
    _return(session, till, clock, sale, quantity=1)  # after the window: from available

    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=0)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_points_that_unlock_pay_a_debt_first_from_the_lots_expiring_soonest(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    first = _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))
    _redeem(session, member, 10, clock)  # unlocks the first sale's 10 points and spends them
    _return(session, till, clock, first)  # takes back 10 points already spent: owes 10
    assert ledger.balance(session, member.id) == ledger.Balance(available=-10, pending=0)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=35))  # the next sale's points expire at the end of next month
    _buy(session, till, keys, clock, member)
    assert ledger.balance(session, member.id) == ledger.Balance(available=-10, pending=20)
    clock.advance(timedelta(days=PENDING_DAYS))

    unlock_points(session, clock.now())

    assert ledger.balance(session, member.id) == ledger.Balance(available=10, pending=0)
    lots = session.execute(
        select(PointLot.points, PointLot.remaining, PointLot.unlocked)
        .where(PointLot.member_id == member.id)
        .order_by(PointLot.id)
    ).all()
    assert [tuple(lot) for lot in lots] == [(10, 0, True), (10, 0, True), (10, 10, True)]
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_matured_points_count_as_available_at_the_till_before_the_unlock_job_runs(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    """The cashier sees what the member can spend now, and a quote agrees with the sale."""
    till = make_till(session, clock)
    member, card = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member)
    assert identify(session, card.number, keys, clock.now()).balance == ledger.Balance(0, 10)
    clock.advance(timedelta(days=PENDING_DAYS))

    assert identify(session, card.number, keys, clock.now()).balance == ledger.Balance(10, 0)
    assert ledger.balance_as_of(session, member.id, clock.now()) == ledger.Balance(10, 0)
    basket = Basket(lines=[BasketLine("TEA", 1, 500)], member_id=member.id, redeem_points=10)
    quoted = quote(session, basket, keys, store_code=till.store.code, now=clock.now())
    # the 4 points the sale earns wait as pending, as the committed sale shows
    assert (quoted.points.redeemed, quoted.balance) == (10, ledger.Balance(0, 4))
    sold = sell(
        session,
        till,
        keys,
        clock,
        member=member,
        lines=[BasketLine("TEA", 1, 500)],
        redeem=10,
    ).result
    assert sold.points.redeemed == 10
    assert sold.balance == ledger.Balance(0, 4)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_the_balance_shown_before_the_unlock_job_is_the_one_it_leaves_even_in_debt(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    first = _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))
    _redeem(session, member, 10, clock)
    _return(session, till, clock, first)  # owes 10
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=3))
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS - 2))  # the second sale's points have matured
    shown = ledger.balance_as_of(session, member.id, clock.now())
    assert shown == ledger.Balance(available=0, pending=10)

    unlock_points(session, clock.now())

    assert ledger.balance(session, member.id) == shown
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_a_sale_that_only_earns_shows_matured_points_as_available_too(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))  # matured; the unlock job has not run

    sold = sell(session, till, keys, clock, member=member, lines=[BasketLine("TEA", 2, 500)])

    assert sold.result.balance == Balance(10, 10)
    assert ledger.balance_as_of(session, member.id, clock.now()) == ledger.Balance(10, 10)
    _consistent(session)


@pytest.mark.usefixtures("pending_program")
def test_an_adjustment_reports_balances_as_the_member_sees_them(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _buy(session, till, keys, clock, member)
    clock.advance(timedelta(days=PENDING_DAYS))

    added = adjust_points(
        session, member_id=member.id, points=5, reason="goodwill", actor="staff:1", now=clock.now()
    )
    removed = adjust_points(
        session, member_id=member.id, points=-3, reason="typo", actor="staff:1", now=clock.now()
    )

    assert (added.before, added.after) == (ledger.Balance(10, 0), ledger.Balance(15, 0))
    assert (removed.before, removed.after) == (ledger.Balance(15, 0), ledger.Balance(12, 0))
    _consistent(session)
