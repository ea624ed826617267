"""Property-based: random sequences of sales, returns, redemptions, adjustments and expiry runs.

After every step the ledger is consistent (balances equal their entries and lots); redemption
never takes a balance below zero; a sale returned in full puts the member back exactly where
they were (balance and every lot)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.adjustments import CannotOverdraw, adjust_points
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.jobs import expire_points
from loyalty.ledger.models import PointLot
from loyalty.rules.pricing import BasketLine
from loyalty.sales.errors import SaleClosed
from loyalty.sales.services import ReturnRequest, record_return
from tests.conftest import START
from tests.factories import make_member, make_till, sell

sale = st.tuples(
    st.just("sale"),
    st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=3),  # unit prices
    st.integers(min_value=0, max_value=100),  # % of what may be redeemed, redeemed
)
sale_returned_at_once = st.tuples(
    st.just("sale returned at once"),
    st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=100),
)
partial_return = st.tuples(st.just("return"), st.integers(min_value=0, max_value=50))
adjustment = st.tuples(
    st.just("adjust"), st.integers(min_value=-3_000, max_value=3_000).filter(bool)
)
expiry = st.tuples(st.just("time passes, expiry runs"), st.integers(min_value=1, max_value=200))
greedy = st.tuples(st.just("redeem too much"), st.integers(min_value=1, max_value=100))
steps = st.lists(
    st.one_of(sale, sale_returned_at_once, partial_return, adjustment, expiry, greedy),
    min_size=1,
    max_size=20,
)


def _account(session, member_id):
    lots = dict(
        session.execute(
            select(PointLot.id, PointLot.remaining).where(PointLot.member_id == member_id)
        ).all()
    )
    return ledger.balance(session, member_id), lots


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_any_sequence_keeps_the_ledger_right(session, keys, plan):
    clock = FixedClock(START)
    nested = session.begin_nested()
    try:
        till = make_till(session, clock)
        member, _ = make_member(session, keys, clock)
        sales: list[tuple[str, list[BasketLine]]] = []
        for n, step in enumerate(plan):
            kind = step[0]
            before = _account(session, member.id)
            if kind in {"sale", "sale returned at once"}:
                lines = [BasketLine(f"SKU{i}", 2, price) for i, price in enumerate(step[1])]
                basket_value = sum(line.amount for line in lines)
                spendable = max(before[0].available, 0)
                redeem = min(spendable, basket_value) * step[2] // 100
                external_id = f"s{n}"
                sell(
                    session,
                    till,
                    keys,
                    clock,
                    member=member,
                    lines=lines,
                    redeem=redeem,
                    external_id=external_id,
                )
                after = ledger.balance(session, member.id)
                assert after.available >= 0 or before[0].available < 0
                if kind == "sale returned at once":
                    record_return(
                        session,
                        terminal=till.terminal,
                        sale_external_id=external_id,
                        now=clock.now(),
                        request=ReturnRequest(
                            external_id=f"r{n}", lines=[(line.sku, line.quantity) for line in lines]
                        ),
                    )
                    balance, lots = _account(session, member.id)
                    assert balance == before[0], "a full return restores the balance"
                    assert {lot: lots[lot] for lot in before[1]} == before[1], "and every lot"
                    assert all(lots[lot] == 0 for lot in lots.keys() - before[1].keys())
                else:
                    sales.append((external_id, lines))
            elif kind == "return" and sales:
                external_id, lines = sales[step[1] % len(sales)]
                line = lines[step[1] % len(lines)]
                try:
                    record_return(
                        session,
                        terminal=till.terminal,
                        sale_external_id=external_id,
                        now=clock.now(),
                        request=ReturnRequest(external_id=f"r{n}", lines=[(line.sku, 1)]),
                    )
                except SaleClosed:
                    pass
                except Exception as exc:  # returning more than is left is refused cleanly
                    assert "returned already" in str(exc)
            elif kind == "adjust":
                try:
                    adjust_points(
                        session,
                        member_id=member.id,
                        points=step[1],
                        reason="property",
                        actor="test",
                        now=clock.now(),
                    )
                except CannotOverdraw:
                    assert -step[1] > before[0].available
                    assert _account(session, member.id) == before
            elif kind == "time passes, expiry runs":
                clock.advance(timedelta(days=step[1]))
                expire_points(session, clock.now())
                assert (
                    ledger.balance(session, member.id).available <= max(before[0].available, 0)
                    or before[0].available < 0
                )
            elif kind == "redeem too much":
                try:
                    ledger.redeem(
                        session,
                        member_id=member.id,
                        points=max(before[0].available, 0) + step[1],
                        reason="greedy",
                        actor="test",
                        now=clock.now(),
                    )
                except NotEnoughPoints:
                    pass
                else:
                    raise AssertionError("redeemed more than the balance")
                assert _account(session, member.id) == before
            session.flush()
            assert ledger.check_ledger(session) == [], f"after step {n}: {step}"
    finally:
        nested.rollback()
