"""Sales, returns and voids at the service level: DESIGN.md's promises 5 and 6."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.checkout.returns import ReturnRequest, record_return, void_sale
from loyalty.clock import FixedClock
from loyalty.errors import InvalidInput
from loyalty.idempotency import IdempotencyConflict
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry, PointLot
from loyalty.ledger.services import Balance
from loyalty.members.models import Member
from loyalty.program import update_program
from loyalty.results import stored
from loyalty.rules.pricing import BasketLine
from loyalty.sales.errors import SaleClosed, UnknownSale
from loyalty.sales.models import Sale, SaleStatus
from loyalty.settings import LookupKeys
from tests.factories import Till, make_member, make_till, sell

BASKET = [
    BasketLine("MILK", 2, 125, "dairy"),
    BasketLine("COFFEE", 1, 899, "pantry"),
    BasketLine("SOAP", 3, 199, "household"),
]  # 250 + 899 + 597 = 1746


def _snapshot(session: Session, member: Member) -> tuple[ledger.Balance, dict[int, int]]:
    session.flush()
    # Column reads, not ORM objects: an identity map would hand back the first values seen.
    lots = dict(
        session.execute(
            select(PointLot.id, PointLot.remaining).where(PointLot.member_id == member.id)
        ).all()
    )
    return ledger.balance(session, member.id), lots


def _member_with_points(
    session: Session, till: Till, keys: LookupKeys, clock: FixedClock, spend: int = 50_000
) -> Member:
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=[BasketLine("GIFT", 1, spend)])
    clock.advance(timedelta(days=35))  # a second lot with a later expiry
    sell(session, till, keys, clock, member=member, lines=[BasketLine("GIFT", 1, spend)])
    return member


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


def _return(session, till, clock, sale_id, return_id, *lines):
    recorded = record_return(
        session,
        terminal=till.terminal,
        sale_external_id=sale_id,
        request=ReturnRequest(external_id=return_id, lines=list(lines)),
        now=clock.now(),
    )
    session.flush()
    return recorded


def test_a_sale_earns_points_on_what_was_paid(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    recorded = sell(session, till, keys, clock, member=member, lines=BASKET)
    assert recorded.created
    assert recorded.result.points.earned == 17
    assert recorded.result.balance == Balance(17, 0)


def test_an_anonymous_sale_is_recorded_and_earns_nothing(session, till, keys, clock):
    recorded = sell(session, till, keys, clock, lines=BASKET, external_id="anon-1")
    sale = session.scalars(select(Sale).where(Sale.external_id == "anon-1")).one()
    assert (sale.member_id, sale.total, sale.points_earned) == (None, 1746, 0)
    assert [line.sku for line in sale.lines] == ["MILK", "COFFEE", "SOAP"]
    assert recorded.result.balance is None


def test_an_anonymous_sale_cannot_redeem_points(session, till, keys, clock):
    with pytest.raises(InvalidInput):
        sell(session, till, keys, clock, lines=BASKET, redeem=100)


def test_a_replayed_sale_returns_the_first_result_and_changes_nothing(session, till, keys, clock):
    member = _member_with_points(session, till, keys, clock)
    first = sell(
        session,
        till,
        keys,
        clock,
        member=member,
        lines=BASKET,
        redeem=300,
        external_id="till-7-000123",
    )
    entries_before = session.scalar(select(func.count()).select_from(PointEntry))
    balance_before = ledger.balance(session, member.id)
    clock.advance(timedelta(minutes=5))
    replay = sell(
        session,
        till,
        keys,
        clock,
        member=member,
        lines=BASKET,
        redeem=300,
        external_id="till-7-000123",
        occurred_at=clock.now() - timedelta(minutes=5),
    )
    assert not replay.created
    assert replay.result == first.result
    assert session.scalar(select(func.count()).select_from(PointEntry)) == entries_before
    assert ledger.balance(session, member.id) == balance_before


def test_the_same_id_with_another_body_is_a_conflict(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="dup")
    with pytest.raises(IdempotencyConflict):
        sell(session, till, keys, clock, member=member, lines=BASKET[:1], external_id="dup")


def test_a_full_return_puts_the_member_back_exactly_where_they_were(session, till, keys, clock):
    member = _member_with_points(session, till, keys, clock)
    before = _snapshot(session, member)
    sell(session, till, keys, clock, member=member, lines=BASKET, redeem=600, external_id="s1")
    assert ledger.balance(session, member.id) != before[0]
    result = _return(session, till, clock, "s1", "r1", ("MILK", 2), ("COFFEE", 1), ("SOAP", 3))
    balance, lots = _snapshot(session, member)
    assert balance == before[0]
    assert {lot: lots[lot] for lot in before[1]} == before[1], "every lot refilled as it was"
    assert all(lots[lot] == 0 for lot in lots.keys() - before[1].keys())
    assert result.result.sale_status == SaleStatus.RETURNED
    assert result.result.points_restored == 600


def test_a_void_puts_the_member_back_exactly_where_they_were(session, till, keys, clock):
    member = _member_with_points(session, till, keys, clock)
    before = _snapshot(session, member)
    sell(session, till, keys, clock, member=member, lines=BASKET, redeem=150, external_id="s2")
    voided = void_sale(session, terminal=till.terminal, sale_external_id="s2", now=clock.now())
    balance, lots = _snapshot(session, member)
    assert balance == before[0]
    assert {lot: lots[lot] for lot in before[1]} == before[1]
    assert voided.result.sale_status == SaleStatus.VOIDED
    again = void_sale(session, terminal=till.terminal, sale_external_id="s2", now=clock.now())
    assert not again.created
    assert again.result == voided.result
    assert ledger.balance(session, member.id) == before[0]


def test_partial_returns_add_up_to_the_full_return(session, till, keys, clock):
    member = _member_with_points(session, till, keys, clock)
    before = _snapshot(session, member)
    sale = sell(
        session, till, keys, clock, member=member, lines=BASKET, redeem=300, external_id="s3"
    )
    earned = sale.result.points.earned
    steps = [("SOAP", 1), ("SOAP", 1), ("MILK", 1), ("COFFEE", 1), ("SOAP", 1), ("MILK", 1)]
    reversed_total = 0
    for n, line in enumerate(steps, start=1):
        result = stored(_return(session, till, clock, "s3", f"r3-{n}", line).result)
        reversed_total += result["points_reversed"]
        assert reversed_total <= earned, "a return never removes more than the sale earned"
        expected = SaleStatus.RETURNED if n == len(steps) else SaleStatus.PARTIALLY_RETURNED
        assert result["sale_status"] == expected
    assert reversed_total == earned
    assert _snapshot(session, member)[0] == before[0]


def test_returning_more_than_was_sold_is_refused_and_changes_nothing(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s4")
    _return(session, till, clock, "s4", "r4-1", ("SOAP", 2))
    balance = ledger.balance(session, member.id)
    with pytest.raises(InvalidInput, match="2 returned already"):
        _return(session, till, clock, "s4", "r4-2", ("SOAP", 2))
    with pytest.raises(InvalidInput, match="not in this sale"):
        _return(session, till, clock, "s4", "r4-3", ("BREAD", 1))
    assert ledger.balance(session, member.id) == balance


def test_a_second_full_return_and_a_return_after_a_void_are_refused(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET[:1], external_id="s5")
    _return(session, till, clock, "s5", "r5-1", ("MILK", 2))
    with pytest.raises(SaleClosed, match="returned in full"):
        _return(session, till, clock, "s5", "r5-2", ("MILK", 1))
    with pytest.raises(SaleClosed):
        void_sale(session, terminal=till.terminal, sale_external_id="s5", now=clock.now())
    sell(session, till, keys, clock, member=member, lines=BASKET[:1], external_id="s6")
    void_sale(session, terminal=till.terminal, sale_external_id="s6", now=clock.now())
    with pytest.raises(SaleClosed, match="voided"):
        _return(session, till, clock, "s6", "r6-1", ("MILK", 1))


def test_a_replayed_return_answers_the_same_and_changes_nothing(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s7")
    first = _return(session, till, clock, "s7", "r7", ("COFFEE", 1))
    balance = ledger.balance(session, member.id)
    replay = _return(session, till, clock, "s7", "r7", ("COFFEE", 1))
    assert not replay.created
    assert replay.result == first.result
    assert ledger.balance(session, member.id) == balance
    with pytest.raises(IdempotencyConflict):
        _return(session, till, clock, "s7", "r7", ("SOAP", 1))


def test_a_return_of_an_unknown_sale_is_refused(session, till, clock):
    with pytest.raises(UnknownSale):
        _return(session, till, clock, "never-sold", "r8", ("MILK", 1))


def test_returning_points_already_spent_leaves_a_debt_not_a_lost_point(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(
        session,
        till,
        keys,
        clock,
        member=member,
        lines=[BasketLine("TV", 1, 50_000)],
        external_id="tv",
    )
    sell(session, till, keys, clock, member=member, lines=[BasketLine("BREAD", 1, 500)], redeem=500)
    _return(session, till, clock, "tv", "tv-back", ("TV", 1))
    # earned 500, spent 500 on bread paid fully with points (which earns nothing), then the
    # TV came back: the 500 it earned are owed
    assert ledger.balance(session, member.id).available == -500
    reversal = session.scalars(
        select(PointEntry).where(
            PointEntry.kind == EntryKind.REVERSE, PointEntry.member_id == member.id
        )
    ).one()
    assert reversal.points == -500


def test_returns_use_the_sales_own_figures_not_todays_earn_rate(session, till, keys, clock):
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s9")
    update_program(session, actor="test", now=clock.now(), earn_points=5)  # rate changed later
    result = _return(session, till, clock, "s9", "r9", ("MILK", 2), ("COFFEE", 1), ("SOAP", 3))
    assert result.result.points_reversed == 17
