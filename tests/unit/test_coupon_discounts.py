"""Pricing a basket's coupons: every kind on a worked example, the order of kinds, rounding,
never below zero, and invariants over many random baskets."""

from __future__ import annotations

import random

import pytest

from loyalty.coupons.discounts import (
    Benefit,
    CouponDiscount,
    DiscountKind,
    PricedCoupons,
    Target,
    combined_multiplier,
    extra_points,
    price_coupons,
)
from loyalty.errors import InvalidInput
from loyalty.rules.pricing import BasketLine

K = DiscountKind
MILK = BasketLine("MILK", 2, 199, "dairy")  # 398
BREAD = BasketLine("BREAD", 1, 349, "bakery")  # 349
SOAP = BasketLine("SOAP", 3, 250, "household")  # 750
BASKET = (MILK, BREAD, SOAP)  # 1497
AMOUNTS = (398, 349, 750)
# the documented order; the points kinds take no money, so their place does not matter
RANK = {K.FIXED_PRICE: 0, K.FREE_UNITS: 1, K.PERCENT_OFF: 2, K.AMOUNT_OFF: 3}


def one(benefit: Benefit, lines=BASKET) -> tuple[int, ...]:
    priced = price_coupons(lines, [("C", benefit)])
    assert priced.coupons[0].line_discounts == priced.line_discounts
    return priced.line_discounts


def test_no_coupons_take_nothing():
    priced = price_coupons(BASKET, [])
    assert priced == PricedCoupons(coupons=(), line_discounts=(0, 0, 0), remaining=AMOUNTS)
    assert priced.total == 0


def test_percent_off_the_basket_rounds_down_per_line():
    # 10 %: 398 -> 39.8 -> 39, 349 -> 34.9 -> 34, 750 -> 75
    priced = price_coupons(BASKET, [("TEN", Benefit(K.PERCENT_OFF, 10))])
    assert priced.line_discounts == (39, 34, 75)
    assert (priced.total, priced.coupons[0].amount) == (148, 148)
    assert priced.remaining == (359, 315, 675)


def test_a_percent_cap_is_spread_over_the_lines_in_proportion_to_their_discounts():
    # 15 %: 5970 // 100 = 59, 5235 // 100 = 52, 11250 // 100 = 112; sum 223 > cap 100.
    # 100 * 59 / 223 = 26 r 102, 100 * 52 / 223 = 23 r 71, 100 * 112 / 223 = 50 r 50;
    # 26 + 23 + 50 = 99, the missing unit goes to the largest remainder (milk).
    assert one(Benefit(K.PERCENT_OFF, 15, cap=100)) == (27, 23, 50)
    # a cap above the sum changes nothing
    assert one(Benefit(K.PERCENT_OFF, 15, cap=223)) == (59, 52, 112)


def test_amount_off_is_spread_in_proportion_to_what_the_lines_cost():
    # 500 over 398, 349, 750 (total 1497): 199000 / 1497 = 132 r 1396,
    # 174500 / 1497 = 116 r 848, 375000 / 1497 = 250 r 750; 498, so milk and bread get +1.
    shares = one(Benefit(K.AMOUNT_OFF, 500))
    assert shares == (133, 117, 250)
    assert all(share <= amount for share, amount in zip(shares, AMOUNTS, strict=True))
    # one minor unit goes to the largest remainder: 750 of 1497 (soap)
    assert one(Benefit(K.AMOUNT_OFF, 1)) == (0, 0, 1)


def test_amount_off_larger_than_the_basket_takes_the_whole_basket_and_no_more():
    priced = price_coupons(
        BASKET, [("BIG", Benefit(K.AMOUNT_OFF, 5000)), ("MORE", Benefit(K.AMOUNT_OFF, 10))]
    )
    assert priced.coupons[0].line_discounts == AMOUNTS
    assert priced.coupons[1].line_discounts == (0, 0, 0)
    assert (priced.remaining, priced.total) == ((0, 0, 0), 1497)


def test_fixed_price_for_soap():
    # 3 units at 100 instead of 250: 3 * 150 = 450
    assert one(Benefit(K.FIXED_PRICE, 100, target=Target.ITEMS, skus=("SOAP",))) == (0, 0, 450)
    # a fixed price above the unit price takes nothing
    assert one(Benefit(K.FIXED_PRICE, 300, target=Target.ITEMS, skus=("SOAP",))) == (0, 0, 0)


def test_buy_two_get_one_free_on_soap():
    # 3 soaps // (2 + 1) * 1 = 1 free unit of 250
    free = Benefit(
        K.FREE_UNITS, target=Target.ITEMS, skus=("SOAP",), buy_quantity=2, free_quantity=1
    )
    assert one(free) == (0, 0, 250)
    # two soaps are not enough
    assert one(free, (MILK, BREAD, BasketLine("SOAP", 2, 250))) == (0, 0, 0)


def test_free_units_are_the_cheapest_units_and_ties_take_later_lines_first():
    # buy 1 get 1 on 4 units (300, 100, 200, 200): 2 free, the 100 and one 200
    lines = (BasketLine("A", 1, 300), BasketLine("B", 1, 100), BasketLine("C", 2, 200))
    assert one(Benefit(K.FREE_UNITS, buy_quantity=1, free_quantity=1), lines) == (0, 100, 200)
    # buy 2 get 1 on 3 units of 100: the free one comes from the later line
    lines = (BasketLine("A", 2, 100), BasketLine("B", 1, 100))
    assert one(Benefit(K.FREE_UNITS, buy_quantity=2, free_quantity=1), lines) == (0, 100)


def test_cheapest_item_half_price():
    # the cheapest unit is one milk at 199: 199 * 50 // 100 = 99 (one unit, not the line)
    assert one(Benefit(K.PERCENT_OFF, 50, target=Target.CHEAPEST)) == (99, 0, 0)
    assert one(Benefit(K.PERCENT_OFF, 50, cap=60, target=Target.CHEAPEST)) == (60, 0, 0)
    # amount off the cheapest unit is limited by that unit: 199, not 398
    assert one(Benefit(K.AMOUNT_OFF, 1000, target=Target.CHEAPEST)) == (199, 0, 0)
    # fixed price 150 for the cheapest unit: 199 - 150 = 49
    assert one(Benefit(K.FIXED_PRICE, 150, target=Target.CHEAPEST)) == (49, 0, 0)
    # cheapest among the matching lines only: bread and soap -> soap at 250, 50 % = 125
    cheapest_non_dairy = Benefit(
        K.PERCENT_OFF, 50, target=Target.CHEAPEST, categories=("bakery", "household")
    )
    assert one(cheapest_non_dairy) == (0, 0, 125)


def test_cheapest_ties_take_the_first_line():
    lines = (BasketLine("A", 1, 100), BasketLine("B", 2, 100))
    assert one(Benefit(K.AMOUNT_OFF, 30, target=Target.CHEAPEST), lines) == (30, 0)


def test_cheapest_unit_already_free_gets_nothing_more():
    # milk at a fixed price of 0 first (398 off), then 50 % off the cheapest unit (milk) = 0
    priced = price_coupons(
        BASKET,
        [
            ("HALF", Benefit(K.PERCENT_OFF, 50, target=Target.CHEAPEST)),
            ("FREEMILK", Benefit(K.FIXED_PRICE, 0, target=Target.ITEMS, skus=("MILK",))),
        ],
    )
    assert [c.line_discounts for c in priced.coupons] == [(0, 0, 0), (398, 0, 0)]


def test_items_by_category():
    # 20 % off dairy: 398 * 20 // 100 = 79 (79.6)
    assert one(Benefit(K.PERCENT_OFF, 20, target=Target.ITEMS, categories=("dairy",))) == (
        79,
        0,
        0,
    )
    # by sku or category: bread by sku, soap by category; 200 over 349 and 750 (1099):
    # 69800 / 1099 = 63 r 563, 150000 / 1099 = 136 r 536; 199, bread gets +1
    mixed = Benefit(
        K.AMOUNT_OFF, 200, target=Target.ITEMS, skus=("BREAD",), categories=("household",)
    )
    assert one(mixed) == (0, 64, 136)


def test_a_percent_listed_before_a_fixed_price_is_applied_after_it():
    # fixed price first: soap 3 * (250 - 100) = 450, soap left 300;
    # then 10 %: 39, 34, 300 -> 30
    priced = price_coupons(
        BASKET,
        [
            ("TEN", Benefit(K.PERCENT_OFF, 10)),
            ("SOAP100", Benefit(K.FIXED_PRICE, 100, target=Target.ITEMS, skus=("SOAP",))),
        ],
    )
    assert [c.code for c in priced.coupons] == ["TEN", "SOAP100"]
    assert priced.coupons[0].line_discounts == (39, 34, 30)
    assert priced.coupons[1].line_discounts == (0, 0, 450)
    assert priced.line_discounts == (39, 34, 480)
    assert priced.remaining == (359, 315, 270)


def test_amount_off_comes_after_percent_off_whatever_the_order_given():
    # 10 % first: remaining 359, 315, 675 (1349); then 100 spread:
    # 35900 / 1349 = 26 r 826, 31500 / 1349 = 23 r 473, 67500 / 1349 = 50 r 50 -> 99, milk +1
    priced = price_coupons(
        BASKET, [("HUNDRED", Benefit(K.AMOUNT_OFF, 100)), ("TEN", Benefit(K.PERCENT_OFF, 10))]
    )
    assert priced.coupons[0].line_discounts == (27, 23, 50)
    assert priced.coupons[1].line_discounts == (39, 34, 75)


def test_two_percent_coupons_compound_on_what_remains():
    # 10 %: 39, 34, 75 -> 359, 315, 675; 10 % again: 35 (35.9), 31 (31.5), 67 (67.5)
    ten = Benefit(K.PERCENT_OFF, 10)
    priced = price_coupons(BASKET, [("A", ten), ("B", ten)])
    assert priced.coupons[1].line_discounts == (35, 31, 67)
    assert priced.line_discounts == (74, 65, 142)


def test_percentages_round_per_minor_unit():
    # 33 % of 1 minor unit is 0.33 -> 0; of 3 it is 0.99 -> 0; of 4 it is 1.32 -> 1
    assert one(Benefit(K.PERCENT_OFF, 33), (BasketLine("GUM", 1, 1),)) == (0,)
    assert one(Benefit(K.PERCENT_OFF, 33), (BasketLine("GUM", 3, 1),)) == (0,)
    assert one(Benefit(K.PERCENT_OFF, 33), (BasketLine("GUM", 1, 4),)) == (1,)
    assert one(Benefit(K.PERCENT_OFF, 100), (BasketLine("GUM", 3, 1),)) == (3,)


def test_points_coupons_take_no_money():
    priced = price_coupons(
        BASKET,
        [
            ("BONUS", Benefit(K.EXTRA_POINTS, 50)),
            ("DOUBLE", Benefit(K.POINTS_MULTIPLIER, 200)),
            ("MORE", Benefit(K.EXTRA_POINTS, 25)),
            ("HALFAGAIN", Benefit(K.POINTS_MULTIPLIER, 150)),
        ],
    )
    assert priced.coupons[0] == CouponDiscount("BONUS", (0, 0, 0), extra_points=50)
    assert priced.coupons[1] == CouponDiscount("DOUBLE", (0, 0, 0), multiplier_percent=200)
    assert (priced.total, priced.remaining) == (0, AMOUNTS)
    assert extra_points(priced.coupons) == 75
    # multipliers do not compound: 200 and 150 make 200, not 300
    assert combined_multiplier(priced.coupons) == 200
    assert (combined_multiplier(()), extra_points(())) == (100, 0)


@pytest.mark.parametrize(
    ("benefit", "field"),
    [
        (Benefit(K.PERCENT_OFF, 0), "value"),
        (Benefit(K.PERCENT_OFF, 101), "value"),
        (Benefit(K.PERCENT_OFF, 10, cap=-1), "cap"),
        (Benefit(K.AMOUNT_OFF, -1), "value"),
        (Benefit(K.FIXED_PRICE, -5, target=Target.CHEAPEST), "value"),
        (Benefit(K.EXTRA_POINTS, -10), "value"),
        (Benefit(K.POINTS_MULTIPLIER, 99), "value"),
        (Benefit(K.FREE_UNITS), "buy_quantity"),
        (Benefit(K.FREE_UNITS, buy_quantity=2), "free_quantity"),
        (Benefit(K.FREE_UNITS, buy_quantity=2, free_quantity=1, target=Target.CHEAPEST), "target"),
        (Benefit(K.AMOUNT_OFF, 100, target=Target.ITEMS), "target"),
    ],
)
def test_bad_benefits_are_refused_with_the_field(benefit, field):
    with pytest.raises(InvalidInput) as error:
        price_coupons(BASKET, [("OK", Benefit(K.PERCENT_OFF, 10)), ("BAD", benefit)])
    assert error.value.field == field


def test_negative_lines_are_refused():
    with pytest.raises(InvalidInput) as error:
        price_coupons([BasketLine("A", -1, 100)], [])
    assert error.value.field == "lines"


def _random_benefit(rng: random.Random) -> Benefit:
    kind = rng.choice(list(DiscountKind))
    target = rng.choice([Target.BASKET, Target.ITEMS, Target.CHEAPEST])
    if kind is K.FREE_UNITS and target is Target.CHEAPEST:
        target = Target.BASKET
    skus = tuple(rng.sample(["A", "B", "C", "D"], rng.randint(0, 2)))
    categories = tuple(rng.sample(["x", "y"], rng.randint(0, 1)))
    if target is Target.ITEMS and not (skus or categories):
        skus = ("A",)
    value = {
        K.PERCENT_OFF: rng.randint(1, 100),
        K.POINTS_MULTIPLIER: rng.randint(100, 300),
    }.get(kind, rng.randint(0, 2000))
    return Benefit(
        kind,
        value,
        cap=rng.choice([None, rng.randint(0, 500)]),
        target=target,
        skus=skus,
        categories=categories,
        buy_quantity=rng.randint(1, 3),
        free_quantity=rng.randint(1, 2),
    )


def test_invariants_over_random_baskets_and_coupons():
    rng = random.Random(20260501)  # noqa: S311
    for _ in range(4000):
        lines = [
            BasketLine(
                rng.choice("ABCDE"),
                rng.randint(0, 5),
                rng.choice([0, 1, 3, rng.randint(1, 1000)]),
                rng.choice([None, "x", "y"]),
            )
            for _ in range(rng.randint(0, 6))
        ]
        coupons = [(f"C{n}", _random_benefit(rng)) for n in range(rng.randint(0, 5))]
        priced = price_coupons(lines, coupons)
        amounts = [line.amount for line in lines]
        assert [c.code for c in priced.coupons] == [code for code, _ in coupons]
        # replaying in the documented order, no coupon takes more than a line still costs
        left = list(amounts)
        by_kind = sorted(range(len(coupons)), key=lambda n: RANK.get(coupons[n][1].kind, 4))
        for n in by_kind:
            coupon, benefit = priced.coupons[n], coupons[n][1]
            assert all(0 <= d <= rest for d, rest in zip(coupon.line_discounts, left, strict=True))
            left = [rest - d for rest, d in zip(left, coupon.line_discounts, strict=True)]
            if benefit.kind is K.AMOUNT_OFF:
                assert coupon.amount <= benefit.value
            if benefit.kind is K.PERCENT_OFF and benefit.cap is not None:
                assert coupon.amount <= benefit.cap
        assert list(priced.remaining) == left
        for i, amount in enumerate(amounts):
            total = sum(c.line_discounts[i] for c in priced.coupons)
            assert priced.line_discounts[i] == total
            assert 0 <= total <= amount
            assert priced.remaining[i] == amount - total >= 0
        assert priced.total == sum(c.amount for c in priced.coupons) == sum(priced.line_discounts)
