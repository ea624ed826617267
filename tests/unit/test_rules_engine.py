"""Earning rules, table by table: every kind, rounding, caps, stacking, priority, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.rules.engine import (
    BaseRate,
    CapPeriod,
    EarnContext,
    PaidLine,
    Rounding,
    Rule,
    RuleKind,
    birthday_in,
    evaluate,
    period_start,
    signup_points,
)

LONDON = ZoneInfo("Europe/London")
DEFAULT = BaseRate(points=1, per_minor=100)
BASKET = (
    PaidLine("MILK", "dairy", 2, 250),
    PaidLine("CIGS-20", "tobacco", 1, 1200),
    PaidLine("COFFEE", "pantry", 1, 899),
    PaidLine("GIFTCARD-25", "giftcard", 1, 2500),
)


def ctx(**overrides) -> EarnContext:
    values = {
        "occurred_at": datetime(2026, 3, 14, 11, 0, tzinfo=UTC),  # a Saturday
        "zone": LONDON,
        "default_rate": DEFAULT,
        "lines": BASKET,
        "store_code": "LDN-01",
    }
    return EarnContext(**(values | overrides))


def rule(n: int, kind: RuleKind, **fields) -> Rule:
    params = fields.pop("params", {})
    return Rule(id=n, name=f"{kind}-{n}", kind=kind, params=params, **fields)


EXCLUDE_TOBACCO_AND_GIFTCARDS = rule(
    1, RuleKind.EXCLUSION, params={"categories": ["tobacco", "giftcard"]}
)


def points(rules, **context) -> int:
    return evaluate(rules, ctx(**context)).points


@pytest.mark.parametrize(
    ("rules", "expected", "why"),
    [
        ([], 48, "default rate: 4849 minor units -> 48 points"),
        ([EXCLUDE_TOBACCO_AND_GIFTCARDS], 11, "only milk and coffee (1149) earn"),
        ([rule(2, RuleKind.SPEND, params={"points": 2, "per_minor": 100})], 96, "double rate"),
        (
            [rule(2, RuleKind.SPEND, params={"points": 1, "per_minor": 100, "rounding": "up"})],
            49,
            "48.49 rounds up",
        ),
        (
            [
                rule(
                    2, RuleKind.SPEND, params={"points": 1, "per_minor": 100, "rounding": "nearest"}
                )
            ],
            48,
            "48.49 rounds to 48",
        ),
        (
            [
                rule(
                    2, RuleKind.SPEND, params={"points": 1, "per_minor": 200, "rounding": "nearest"}
                )
            ],
            24,
            "24.245 rounds to 24",
        ),
        (
            [
                rule(2, RuleKind.SPEND, params={"points": 1, "per_minor": 100}),
                rule(3, RuleKind.SPEND, params={"points": 5, "per_minor": 100}, priority=200),
            ],
            48,
            "the spend rule with the lower priority number sets the base",
        ),
        (
            [
                rule(
                    2,
                    RuleKind.PRODUCT,
                    params={"skus": ["COFFEE"], "mode": "add", "points_per_unit": 25},
                )
            ],
            48 + 25,
            "per unit",
        ),
        (
            [
                rule(
                    2,
                    RuleKind.PRODUCT,
                    params={"categories": ["dairy"], "mode": "add", "points_per_unit": 10},
                )
            ],
            48 + 20,
            "2 milk",
        ),
        (
            [
                rule(
                    2,
                    RuleKind.PRODUCT,
                    params={"skus": ["COFFEE"], "mode": "multiply", "multiplier_percent": 300},
                )
            ],
            48 + 16,
            "x3 on coffee's 8 base points adds 16",
        ),
        (
            [
                EXCLUDE_TOBACCO_AND_GIFTCARDS,
                rule(
                    2,
                    RuleKind.PRODUCT,
                    params={"categories": ["tobacco"], "mode": "add", "points_per_unit": 50},
                ),
            ],
            11,
            "an excluded line earns nothing, from any rule",
        ),
        (
            [rule(2, RuleKind.VISIT, params={"points": 30, "min_basket": 5000})],
            48,
            "basket under the minimum",
        ),
        ([rule(2, RuleKind.VISIT, params={"points": 30, "min_basket": 4000})], 78, "visit"),
        ([rule(2, RuleKind.FIRST_PURCHASE, params={"points": 100})], 48, "not the first"),
    ],
)
def test_each_rule_kind_gives_what_it_promises(rules, expected, why):
    assert points(rules) == expected, why


def test_the_first_purchase_bonus_comes_once():
    assert (
        points([rule(2, RuleKind.FIRST_PURCHASE, params={"points": 100})], first_purchase=True)
        == 148
    )


@pytest.mark.parametrize(
    ("occurred_at", "applies"),
    [
        (datetime(2026, 3, 14, 9, 30, tzinfo=UTC), True),  # Saturday 09:30 in London (GMT)
        (datetime(2026, 3, 14, 23, 30, tzinfo=UTC), True),  # Saturday 23:30 London
        (datetime(2026, 3, 15, 0, 30, tzinfo=UTC), False),  # Sunday 00:30 London
        (datetime(2026, 7, 11, 23, 30, tzinfo=UTC), False),  # Sunday 00:30 London (BST)
        (datetime(2026, 7, 11, 22, 30, tzinfo=UTC), True),  # Saturday 23:30 London (BST)
        (datetime(2026, 3, 13, 23, 59, tzinfo=UTC), False),  # Friday
    ],
)
def test_a_saturday_promotion_follows_the_programs_time_zone(occurred_at, applies):
    saturday_double = rule(
        2,
        RuleKind.PROMOTION,
        params={"weekdays": [5], "mode": "multiply", "multiplier_percent": 200},
    )
    earned = points([saturday_double], occurred_at=occurred_at)
    assert earned == (96 if applies else 48)


def test_a_happy_hour_promotion_counts_local_hours():
    happy_hour = rule(
        2,
        RuleKind.PROMOTION,
        params={"from_time": "17:00", "until_time": "19:00", "mode": "add", "points": 15},
    )
    # 16:30 UTC is 17:30 in London in July (BST), 16:30 in March (GMT)
    assert points([happy_hour], occurred_at=datetime(2026, 7, 1, 16, 30, tzinfo=UTC)) == 63
    assert points([happy_hour], occurred_at=datetime(2026, 3, 2, 16, 30, tzinfo=UTC)) == 48


def test_a_rule_outside_its_active_window_gives_nothing():
    window = {
        "starts_at": datetime(2026, 3, 15, tzinfo=UTC),
        "ends_at": datetime(2026, 3, 22, tzinfo=UTC),
    }
    bonus = rule(2, RuleKind.VISIT, params={"points": 30}, **window)
    assert points([bonus], occurred_at=datetime(2026, 3, 14, 23, 59, tzinfo=UTC)) == 48
    assert points([bonus], occurred_at=datetime(2026, 3, 15, tzinfo=UTC)) == 78
    assert points([bonus], occurred_at=datetime(2026, 3, 22, tzinfo=UTC)) == 48


def test_store_and_tier_targets():
    gold_only = rule(2, RuleKind.VISIT, params={"points": 30}, tiers=frozenset({"GOLD"}))
    other_store = rule(3, RuleKind.VISIT, params={"points": 7}, stores=frozenset({"MAN-01"}))
    assert points([gold_only, other_store], tier_code="GOLD") == 78
    assert points([gold_only, other_store], tier_code="SILVER") == 48
    assert points([gold_only, other_store], store_code="MAN-01") == 55


def test_a_rule_that_does_not_stack_ends_the_evaluation_in_priority_order():
    first = rule(5, RuleKind.VISIT, params={"points": 30}, priority=10, stackable=False)
    later = rule(2, RuleKind.FIRST_PURCHASE, params={"points": 100}, priority=20)
    earned = evaluate([later, first], ctx(first_purchase=True))
    assert [a.rule_id for a in earned.awards] == [None, 5]
    assert earned.points == 78
    # a non-stacking rule that gives nothing does not stop the others
    missed = rule(
        6, RuleKind.VISIT, params={"points": 30, "min_basket": 10**6}, priority=5, stackable=False
    )
    assert points([missed, later], first_purchase=True) == 148


def test_equal_priorities_are_ordered_by_id_not_by_edit_time():
    a = rule(7, RuleKind.VISIT, params={"points": 1}, priority=10, stackable=False)
    b = rule(3, RuleKind.VISIT, params={"points": 2}, priority=10, stackable=False)
    assert [x.rule_id for x in evaluate([a, b], ctx()).awards] == [None, 3]


def test_caps_cut_a_bonus_to_what_is_left_of_the_period():
    capped = rule(
        2, RuleKind.VISIT, params={"points": 30}, cap_points=50, cap_period=CapPeriod.MONTH
    )
    assert points([capped], cap_used={2: 0}) == 78
    assert points([capped], cap_used={2: 40}) == 58
    assert points([capped], cap_used={2: 50}) == 48


def test_multipliers_add_up_rather_than_compound():
    tier = rule(2, RuleKind.TIER_MULTIPLIER, params={})
    promo = rule(3, RuleKind.PROMOTION, params={"mode": "multiply", "multiplier_percent": 200})
    earned = evaluate([tier, promo], ctx(tier_code="GOLD", tier_multiplier_percent=150))
    assert earned.points == 48 + 24 + 48
    assert [a.kind for a in earned.awards] == ["spend", "tier_multiplier", "promotion"]


def test_a_member_without_a_tier_gets_no_tier_multiplier():
    assert points([rule(2, RuleKind.TIER_MULTIPLIER, params={})]) == 48


@pytest.mark.parametrize(
    ("born", "sale_day", "window", "applies"),
    [
        (date(1990, 3, 14), date(2026, 3, 14), "day", True),
        (date(1990, 3, 14), date(2026, 3, 15), "day", False),
        (date(1990, 3, 14), date(2026, 3, 9), "week", True),  # Monday of that week
        (date(1990, 3, 14), date(2026, 3, 15), "week", True),  # Sunday
        (date(1990, 3, 14), date(2026, 3, 16), "week", False),
        (date(1990, 3, 14), date(2026, 3, 1), "month", True),
        (date(1990, 3, 14), date(2026, 4, 1), "month", False),
        (date(2000, 2, 29), date(2026, 2, 28), "day", True),  # not a leap year: 28 Feb
        (date(2000, 2, 29), date(2026, 3, 1), "day", False),
        (date(2000, 2, 29), date(2028, 2, 29), "day", True),  # a leap year: the day itself
        (date(2000, 2, 29), date(2028, 2, 28), "day", False),
    ],
)
def test_birthday_bonus_windows_including_29_february(born, sale_day, window, applies):
    bonus = rule(2, RuleKind.BIRTHDAY, params={"points": 200, "window": window})
    when = datetime(sale_day.year, sale_day.month, sale_day.day, 12, tzinfo=UTC)
    assert points([bonus], birthday=born, occurred_at=when) == 48 + (200 if applies else 0)


def test_29_february_is_kept_on_28_february_in_common_years():
    assert birthday_in(2027, date(2004, 2, 29)) == date(2027, 2, 28)
    assert birthday_in(2028, date(2004, 2, 29)) == date(2028, 2, 29)


def test_the_breakdown_says_which_rule_gave_what():
    rules = [
        EXCLUDE_TOBACCO_AND_GIFTCARDS,
        rule(
            2, RuleKind.PRODUCT, params={"skus": ["COFFEE"], "mode": "add", "points_per_unit": 25}
        ),
    ]
    earned = evaluate(rules, ctx())
    assert [(a.rule, a.points) for a in earned.awards] == [("base", 11), ("product-2", 25)]
    assert earned.eligible_amount == 1149


def test_sign_up_bonuses():
    welcome = rule(2, RuleKind.SIGNUP, params={"points": 50})
    assert [a.points for a in signup_points([welcome], ctx())] == [50]
    later = rule(
        3, RuleKind.SIGNUP, params={"points": 50}, starts_at=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert signup_points([later], ctx()) == ()


@pytest.mark.parametrize(
    ("period", "start"),
    [
        (CapPeriod.DAY, datetime(2026, 3, 14, tzinfo=LONDON)),
        (CapPeriod.MONTH, datetime(2026, 3, 1, tzinfo=LONDON)),
        (CapPeriod.YEAR, datetime(2026, 1, 1, tzinfo=LONDON)),
        (CapPeriod.EVER, None),
    ],
)
def test_cap_periods_start_at_local_midnight(period, start):
    local = datetime(2026, 3, 14, 11, 0, tzinfo=UTC).astimezone(LONDON)
    assert period_start(period, local) == start


def test_rounding_modes():
    assert BaseRate(1, 100, Rounding.DOWN).points_for(199) == 1
    assert BaseRate(1, 100, Rounding.NEAREST).points_for(150) == 2
    assert BaseRate(1, 100, Rounding.NEAREST).points_for(149) == 1
    assert BaseRate(1, 100, Rounding.UP).points_for(101) == 2
    assert BaseRate(1, 100, Rounding.UP).points_for(-5) == 0
