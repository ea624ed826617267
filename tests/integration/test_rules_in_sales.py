"""Earning rules applied by real sales, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from loyalty.audit.models import AuditEntry
from loyalty.checkout.returns import ReturnRequest, record_return, void_sale
from loyalty.checkout.services import Basket, quote
from loyalty.ledger import services as ledger
from loyalty.results import stored
from loyalty.rules.models import EarnAward
from loyalty.rules.pricing import BasketLine
from loyalty.rules.services import InvalidRule, archive_rule, create_rule, update_rule
from loyalty.tiers.services import create_tier
from tests.factories import make_member, make_till, sell

BASKET = [
    BasketLine("MILK", 2, 125, "dairy"),
    BasketLine("CIGS-20", 1, 1200, "tobacco"),
    BasketLine("COFFEE", 1, 899, "pantry"),
]  # 250 + 1200 + 899 = 2349


def rule(session, clock, **definition):
    definition.setdefault("name", f"{definition['kind']} rule")
    return create_rule(session, definition, actor="staff:test", now=clock.now())


@pytest.fixture
def till(session, clock):
    return make_till(session, clock)


def test_a_sale_explains_which_rule_gave_what_and_the_quote_agrees(session, till, keys, clock):
    rule(session, clock, kind="exclusion", params={"categories": ["tobacco"]})
    coffee = rule(
        session,
        clock,
        kind="product",
        params={"skus": ["COFFEE"], "mode": "add", "points_per_unit": 25},
    )
    member, _ = make_member(session, keys, clock)
    quoted = quote(
        session,
        Basket(lines=BASKET, member_id=member.id),
        keys,
        store_code=till.store.code,
        now=clock.now(),
    )
    sale = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    assert sale["points"] == stored(quoted)["points"]
    assert sale["points"]["earned"] == 11 + 25
    assert [(r["rule"], r["points"]) for r in sale["points"]["reasons"]] == [
        ("base", 11),
        (coffee.name, 25),
    ]
    assert ledger.balance(session, member.id).available == 36


def test_a_rule_change_never_alters_points_already_earned(session, till, keys, clock):
    double = rule(session, clock, kind="spend", params={"points": 2, "per_minor": 100})
    member, _ = make_member(session, keys, clock)
    first = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s1")
    assert first.result.points.earned == 46
    update_rule(
        session,
        double.id,
        {"params": {"points": 5, "per_minor": 100}},
        actor="staff:test",
        now=clock.now(),
    )
    replay = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s1")
    assert replay.result == first.result
    second = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s2")
    assert second.result.points.earned == 117
    archive_rule(session, double.id, actor="staff:test", now=clock.now())
    third = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="s3")
    assert third.result.points.earned == 23
    assert ledger.balance(session, member.id).available == 46 + 117 + 23
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.subject_type == "earn_rule", AuditEntry.subject_id == str(double.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["rule.create", "rule.update", "rule.archive"]


def test_a_monthly_cap_carries_across_sales_and_starts_again_next_month(session, till, keys, clock):
    rule(session, clock, kind="visit", params={"points": 40}, cap_points=100, cap_period="month")
    member, _ = make_member(session, keys, clock)  # 14 March 2026
    bonuses = []
    for n in range(4):
        result = stored(
            sell(
                session, till, keys, clock, member=member, lines=BASKET, external_id=f"cap-{n}"
            ).result
        )
        bonuses.append(result["points"]["earned"] - 23)
    assert bonuses == [40, 40, 20, 0]
    clock.advance(timedelta(days=18))  # 1 April
    april = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="cap-4")
    assert april.result.points.earned == 23 + 40


def test_a_voided_sale_gives_its_capped_bonus_back_to_the_period(session, till, keys, clock):
    rule(session, clock, kind="visit", params={"points": 40}, cap_points=40, cap_period="month")
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="v1")
    void_sale(session, terminal=till.terminal, sale_external_id="v1", now=clock.now())
    again = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="v2")
    assert again.result.points.earned == 23 + 40
    withdrawn = session.scalars(
        select(EarnAward.withdrawn).where(EarnAward.member_id == member.id).order_by(EarnAward.id)
    ).all()
    assert withdrawn == [True, False]


def test_a_partial_return_keeps_the_bonus_in_the_cap(session, till, keys, clock):
    rule(session, clock, kind="visit", params={"points": 40}, cap_points=40, cap_period="month")
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET, external_id="p1")
    record_return(
        session,
        terminal=till.terminal,
        sale_external_id="p1",
        now=clock.now(),
        request=ReturnRequest(external_id="p1-r", lines=[("MILK", 1)]),
    )
    again = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="p2")
    assert again.result.points.earned == 23


def test_the_birthday_bonus_comes_once_a_year(session, till, keys, clock):
    rule(session, clock, kind="birthday", params={"points": 200, "window": "month"})
    member, _ = make_member(session, keys, clock, birthday=date(1990, 3, 20))
    first = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="b1")
    second = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="b2")
    assert (first.result.points.earned, second.result.points.earned) == (223, 23)
    clock.advance(timedelta(days=365))  # March 2027: a new year, a new birthday
    third = sell(session, till, keys, clock, member=member, lines=BASKET, external_id="b3")
    assert third.result.points.earned == 223


def test_the_first_purchase_bonus_comes_with_the_first_sale_only(session, till, keys, clock):
    rule(session, clock, kind="first_purchase", params={"points": 100})
    member, _ = make_member(session, keys, clock)
    first = sell(session, till, keys, clock, member=member, lines=BASKET)
    second = sell(session, till, keys, clock, member=member, lines=BASKET)
    assert (first.result.points.earned, second.result.points.earned) == (123, 23)


def test_a_store_scoped_rule_applies_at_that_store_only(session, till, keys, clock):
    other = make_till(session, clock)
    rule(session, clock, kind="visit", params={"points": 10}, stores=[other.store.code])
    member, _ = make_member(session, keys, clock)
    here = sell(session, till, keys, clock, member=member, lines=BASKET)
    there = sell(session, other, keys, clock, member=member, lines=BASKET)
    assert (here.result.points.earned, there.result.points.earned) == (23, 33)


def test_a_saturday_promotion_in_the_programs_zone(session, till, keys, clock):
    from loyalty.program import update_program  # noqa: PLC0415

    update_program(session, actor="test", now=clock.now(), timezone="Pacific/Auckland")
    rule(
        session,
        clock,
        kind="promotion",
        params={"weekdays": [5], "mode": "multiply", "multiplier_percent": 200},
    )
    member, _ = make_member(session, keys, clock)
    # Friday 13 March 2026, 12:00 UTC is already Saturday 01:00 in Auckland (UTC+13)
    friday_utc = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
    sale = sell(session, till, keys, clock, member=member, lines=BASKET, occurred_at=friday_utc)
    assert sale.result.points.earned == 46


def test_the_tier_multiplier_applies_once_the_member_holds_the_tier(session, till, keys, clock):
    create_tier(
        session,
        code="GOLD",
        name="Gold",
        rank=2,
        threshold=2000,
        earn_multiplier_percent=150,
        actor="test",
        now=clock.now(),
    )
    rule(session, clock, kind="tier_multiplier", params={})
    member, _ = make_member(session, keys, clock)
    first = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    assert (first["points"]["earned"], first["tier"], first["tier_changed"]) == (
        23,
        {
            "code": "GOLD",
            "name": "Gold",
            "rank": 2,
            "threshold": 2000,
            "earn_multiplier_percent": 150,
            "perks": "",
        },
        True,
    )
    second = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    assert (second["points"]["earned"], second["tier_changed"]) == (23 + 11, False)


def test_a_sign_up_bonus_is_credited_at_enrolment(session, keys, clock):
    welcome = rule(session, clock, kind="signup", params={"points": 50})
    member, _ = make_member(session, keys, clock)
    assert ledger.balance(session, member.id).available == 50
    award = session.scalars(select(EarnAward).where(EarnAward.member_id == member.id)).one()
    assert (award.rule_id, award.points, award.sale_id) == (welcome.id, 50, None)


def test_rules_outside_their_window_do_not_apply(session, till, keys, clock):
    rule(
        session,
        clock,
        kind="visit",
        params={"points": 10},
        starts_at=(clock.now() + timedelta(days=1)).isoformat(),
    )
    member, _ = make_member(session, keys, clock)
    assert sell(session, till, keys, clock, member=member, lines=BASKET).result.points.earned == 23


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"kind": "spend", "params": {"points": -1, "per_minor": 100}}, "params.points"),
        ({"kind": "spend", "params": {"points": 1, "per_minor": 0}}, "params.per_minor"),
        ({"kind": "spend", "params": {"points": 1}}, "params.per_minor"),
        (
            {"kind": "spend", "params": {"points": 1, "per_minor": 100, "rounding": "sideways"}},
            "params.rounding",
        ),
        (
            {"kind": "product", "params": {"sku": ["A"], "mode": "add", "points_per_unit": 1}},
            "params.sku",
        ),
        ({"kind": "product", "params": {"mode": "add", "points_per_unit": 1}}, "params.skus"),
        (
            {"kind": "product", "params": {"skus": ["A"], "mode": "multiply"}},
            "params.multiplier_percent",
        ),
        (
            {
                "kind": "promotion",
                "params": {"mode": "add", "points": 5, "from_time": "18:00", "until_time": "09:00"},
            },
            "params.until_time",
        ),
        (
            {"kind": "promotion", "params": {"mode": "add", "points": 5, "weekdays": [7]}},
            "params.weekdays.0",
        ),
        (
            {
                "kind": "visit",
                "params": {"points": 5},
                "starts_at": "2026-05-01T00:00:00+00:00",
                "ends_at": "2026-04-01T00:00:00+00:00",
            },
            "ends_at",
        ),
        (
            {"kind": "visit", "params": {"points": 5}, "starts_at": "2026-05-01T00:00:00"},
            "starts_at",
        ),
        ({"kind": "visit", "params": {"points": 5}, "cap_points": 10}, "cap_period"),
        ({"kind": "visit", "params": {"points": 5}, "tiers": ["PLATINUM"]}, "tiers"),
        ({"kind": "visit", "params": {"points": 5}, "stores": ["NOWHERE"]}, "stores"),
        ({"kind": "lottery", "params": {}}, "kind"),
        ({"kind": "visit", "params": {"points": 5}, "priority": -1}, "priority"),
        ({"kind": "visit", "params": {"points": 5}, "colour": "red"}, "colour"),
    ],
)
def test_bad_rule_definitions_are_refused_with_the_field_named(session, clock, definition, field):
    with pytest.raises(InvalidRule) as refused:
        rule(session, clock, **definition)
    assert field in refused.value.errors, refused.value.errors


def test_a_rule_change_that_is_rolled_back_leaves_no_trace_in_later_sales(
    session, till, keys, clock
):
    member, _ = make_member(session, keys, clock)
    before = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    attempt = session.begin_nested()
    rule(session, clock, kind="spend", params={"points": 9, "per_minor": 100})
    during = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    attempt.rollback()  # the change never committed, though a sale read it while it lasted
    after = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    assert (before["points"]["earned"], during["points"]["earned"], after["points"]["earned"]) == (
        23,
        211,
        23,
    )


def test_rules_that_cannot_apply_cost_no_queries(session, till, keys, clock, count_queries):
    other = make_till(session, clock)
    rule(session, clock, kind="first_purchase", params={"points": 5}, stores=[other.store.code])
    rule(
        session,
        clock,
        kind="visit",
        params={"points": 5},
        cap_points=10,
        cap_period="day",
        ends_at=(clock.now() - timedelta(days=1)).isoformat(),
        starts_at=(clock.now() - timedelta(days=9)).isoformat(),
    )
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, lines=BASKET)  # warms the rule cache
    with count_queries() as statements:
        sell(session, till, keys, clock, member=member, lines=BASKET)
    # no read of the member's facts at all: caps (earn_awards) and first purchase (sales)
    assert statements.reading("earn_awards", "sales") == []


def test_every_mistake_in_a_rule_definition_is_reported_at_once(session, clock):
    definition = {
        "name": "",
        "kind": "spend",
        "params": {"points": -1},
        "priority": -5,
        "starts_at": "2026-05-01T00:00:00+00:00",
        "ends_at": "2026-04-01T00:00:00+00:00",
        "cap_points": 10,
    }
    with pytest.raises(InvalidRule) as refused:
        create_rule(session, definition, actor="staff:test", now=clock.now())
    assert set(refused.value.errors) == {
        "name",
        "priority",
        "params.points",
        "params.per_minor",
        "ends_at",
        "cap_period",
    }, refused.value.errors


@pytest.mark.parametrize(
    ("definition", "errors"),
    [
        ({"kind": "spend", "params": "abc"}, {"params"}),
        ({"kind": "spend", "params": []}, {"params"}),
        (
            {"kind": "visit", "params": {"points": 5}, "cap_points": "x", "cap_period": "day"},
            {"cap_points"},
        ),
    ],
)
def test_a_field_that_fails_on_its_own_brings_no_second_guessed_errors(
    session, clock, definition, errors
):
    with pytest.raises(InvalidRule) as refused:
        rule(session, clock, **definition)
    assert {name.split(".")[0] for name in refused.value.errors} == errors, refused.value.errors
    assert "params.points" not in refused.value.errors


def test_caps_first_purchase_and_tier_standing_are_read_in_one_statement(
    session, till, keys, clock, count_queries
):
    create_tier(
        session, code="SILVER", name="Silver", rank=1, threshold=4_000, actor="t", now=clock.now()
    )
    rule(session, clock, kind="first_purchase", params={"points": 50})
    visit = rule(session, clock, kind="visit", params={"points": 5}, cap_points=7, cap_period="day")
    spend = rule(
        session,
        clock,
        kind="spend",
        params={"points": 1, "per_minor": 100},
        cap_points=1_000,
        cap_period="month",
    )
    member, _ = make_member(session, keys, clock)
    first = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    with count_queries() as statements:
        second = stored(sell(session, till, keys, clock, member=member, lines=BASKET).result)
    reads = statements.reading("earn_awards", "sales")
    assert len(reads) == 1, reads
    # what that one statement read was right: no second first-purchase bonus, the visit cap
    # of 7 a day left 2 points, and the two sales (2 x 23.49) crossed Silver's 40.00
    assert [(r["kind"], r["points"]) for r in first["points"]["reasons"]] == [
        ("spend", 23),
        ("first_purchase", 50),
        ("visit", 5),
    ]
    assert [(r["rule_id"], r["points"]) for r in second["points"]["reasons"]] == [
        (spend.id, 23),
        (visit.id, 2),
    ]
    assert (first["tier"], second["tier"]["code"], second["tier_changed"]) == (
        None,
        "SILVER",
        True,
    )
