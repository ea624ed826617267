"""Pricing a basket: pure functions, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.errors import InvalidInput
from loyalty.ledger.expiry import lot_expiry
from loyalty.program import default_settings
from loyalty.rules.engine import EarnContext, evaluate
from loyalty.rules.pricing import (
    BasketLine,
    default_rate,
    points_kept_after_returns,
    price_basket,
    spread,
)

PROGRAM = default_settings()


def _earned(program, priced) -> int:
    ctx = EarnContext(
        occurred_at=datetime(2026, 5, 1, tzinfo=UTC),
        zone=program.zone,
        default_rate=default_rate(program),
        lines=priced.paid_lines,
    )
    return evaluate([], ctx).points


def test_one_point_per_whole_currency_unit_rounded_down_per_transaction():
    priced = price_basket(PROGRAM, [BasketLine("A", 3, 333), BasketLine("B", 1, 1)], 0)
    assert priced.subtotal == 1000
    assert _earned(PROGRAM, priced) == 10
    priced = price_basket(PROGRAM, [BasketLine("A", 1, 999)], 0)
    assert _earned(PROGRAM, priced) == 9


def test_a_hundred_points_take_one_unit_off_and_points_are_earned_on_what_is_paid():
    priced = price_basket(PROGRAM, [BasketLine("A", 1, 1000)], 250)
    assert (priced.points_discount, priced.total, _earned(PROGRAM, priced)) == (250, 750, 7)
    assert [line.paid for line in priced.paid_lines] == [750]


def test_points_worth_more_than_the_basket_are_refused():
    with pytest.raises(InvalidInput) as error:
        price_basket(PROGRAM, [BasketLine("A", 1, 100)], 101)
    assert error.value.field == "redeem_points"


def test_currencies_without_minor_units_earn_per_whole_unit():
    yen = default_settings(currency="JPY")
    assert yen.earn_per_minor == 1
    assert _earned(yen, price_basket(yen, [BasketLine("A", 1, 1500)], 0)) == 1500


@given(
    amount=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30),
)
def test_a_discount_spreads_over_lines_in_whole_units_that_add_up(amount, weights):
    shares = spread(amount, weights)
    if sum(weights) == 0:
        assert shares == [0] * len(weights)
        return
    assert sum(shares) == amount
    assert all(share >= 0 for share in shares)
    assert all(share == 0 for share, weight in zip(shares, weights, strict=True) if weight == 0)


@given(
    earned=st.integers(min_value=0, max_value=10**6),
    paid=st.integers(min_value=1, max_value=10**8),
    steps=st.lists(st.integers(min_value=0, max_value=10**8), max_size=10),
)
def test_partial_returns_never_take_back_more_than_was_earned_and_add_up(earned, paid, steps):
    kept_paid = paid
    kept_points = earned
    for step in steps:
        kept_paid = max(kept_paid - step, 0)
        now_kept = points_kept_after_returns(earned, paid, kept_paid)
        assert 0 <= now_kept <= kept_points, "a return never gives points back or overdraws"
        kept_points = now_kept
    assert points_kept_after_returns(earned, paid, 0) == 0, "a full return takes all earned"


@pytest.mark.parametrize(
    ("earned_at", "expires_at"),
    [
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)),
        (datetime(2026, 1, 31, 23, 59, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
    ],
)
def test_points_last_until_the_end_of_the_same_month_a_year_later(earned_at, expires_at):
    assert lot_expiry(PROGRAM, earned_at) == expires_at


def test_the_month_is_the_programs_local_month():
    program = replace(default_settings(), timezone="Pacific/Auckland")  # UTC+13 in January
    # 31 Jan 2026 12:00 UTC is already 1 February in Auckland
    expiry = lot_expiry(program, datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    assert expiry is not None
    assert expiry.astimezone(program.zone).date().isoformat() == "2027-03-01"
