"""Property-based: random sequences of sales, returns, redemptions, adjustments and expiry runs.

After every step the ledger is consistent (balances equal their entries and lots); redemption
never takes a balance below zero; a sale returned in full puts the member back exactly where
they were (balance and every lot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.clock import FixedClock
from loyalty.errors import InvalidInput
from loyalty.ledger import services as ledger
from loyalty.ledger.adjustments import CannotOverdraw, adjust_points
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.jobs import expire_points
from loyalty.ledger.models import PointLot
from loyalty.members.models import Member
from loyalty.rules.pricing import BasketLine
from loyalty.sales.errors import SaleClosed
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import Till, make_member, make_till, sell

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


@dataclass
class World:
    """One member at one till, and the sales they can still return goods from."""

    session: Session
    keys: LookupKeys
    clock: FixedClock
    till: Till
    member_id: int
    sales: list[tuple[str, list[BasketLine]]] = field(default_factory=list)

    def account(self):
        return _account(self.session, self.member_id)


def _sale(world: World, n: int, step: tuple, before) -> None:
    kind, prices, share = step
    lines = [BasketLine(f"SKU{i}", 2, price) for i, price in enumerate(prices)]
    spendable = max(before[0].available, 0)
    redeem = min(spendable, sum(line.amount for line in lines)) * share // 100
    external_id = f"s{n}"
    sell(
        world.session,
        world.till,
        world.keys,
        world.clock,
        member=world.session.get(Member, world.member_id),
        lines=lines,
        redeem=redeem,
        external_id=external_id,
    )
    assert ledger.balance(world.session, world.member_id).available >= min(
        before[0].available, 0
    ), "redemption never takes a balance below zero"
    if kind == "sale":
        world.sales.append((external_id, lines))
        return
    record_return(
        world.session,
        terminal=world.till.terminal,
        sale_external_id=external_id,
        now=world.clock.now(),
        request=ReturnRequest(
            external_id=f"r{n}", lines=[(line.sku, line.quantity) for line in lines]
        ),
    )
    balance, lots = world.account()
    assert balance == before[0], "a full return restores the balance"
    assert {lot: lots[lot] for lot in before[1]} == before[1], "and every lot"
    assert all(lots[lot] == 0 for lot in lots.keys() - before[1].keys())


def _partial_return(world: World, n: int, step: tuple, before) -> None:
    if not world.sales:
        return
    external_id, lines = world.sales[step[1] % len(world.sales)]
    line = lines[step[1] % len(lines)]
    try:
        record_return(
            world.session,
            terminal=world.till.terminal,
            sale_external_id=external_id,
            now=world.clock.now(),
            request=ReturnRequest(external_id=f"r{n}", lines=[(line.sku, 1)]),
        )
    except (SaleClosed, InvalidInput):  # nothing left to return: refused, nothing written
        assert world.account() == before


def _adjust(world: World, n: int, step: tuple, before) -> None:
    try:
        adjust_points(
            world.session,
            member_id=world.member_id,
            points=step[1],
            reason=f"property {n}",
            actor="test",
            now=world.clock.now(),
        )
    except CannotOverdraw:
        assert -step[1] > before[0].available
        assert world.account() == before


def _expire(world: World, _n: int, step: tuple, before) -> None:
    world.clock.advance(timedelta(days=step[1]))
    expire_points(world.session, world.clock.now())
    after = ledger.balance(world.session, world.member_id).available
    assert after <= before[0].available, "expiry only ever takes points away"


def _greedy(world: World, _n: int, step: tuple, before) -> None:
    with pytest.raises(NotEnoughPoints):
        ledger.redeem(
            world.session,
            member_id=world.member_id,
            points=max(before[0].available, 0) + step[1],
            reason="greedy",
            actor="test",
            now=world.clock.now(),
        )
    assert world.account() == before


STEPS = {
    "sale": _sale,
    "sale returned at once": _sale,
    "return": _partial_return,
    "adjust": _adjust,
    "time passes, expiry runs": _expire,
    "redeem too much": _greedy,
}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_any_sequence_keeps_the_ledger_right(session, keys, plan):
    clock = FixedClock(START)
    nested = session.begin_nested()
    try:
        member, _ = make_member(session, keys, clock)
        world = World(session, keys, clock, make_till(session, clock), member.id)
        for n, step in enumerate(plan):
            STEPS[step[0]](world, n, step, world.account())
            session.flush()
            assert ledger.check_ledger(session) == [], f"after step {n}: {step}"
    finally:
        nested.rollback()
