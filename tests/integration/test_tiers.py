"""Tiers across a simulated year: upgrade at the sale, grace, downgrade at review, floors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.program import get_program, update_program
from loyalty.results import stored
from loyalty.rules.pricing import BasketLine
from loyalty.tiers.services import (
    create_tier,
    current_tier,
    progress,
    review_tiers,
    set_floor,
)
from tests.factories import give_points, make_member, make_till, sell


@pytest.fixture
def shop(session, clock):
    create_tier(
        session,
        code="SILVER",
        name="Silver",
        rank=1,
        threshold=10_000,
        earn_multiplier_percent=110,
        actor="test",
        now=clock.now(),
    )
    create_tier(
        session,
        code="GOLD",
        name="Gold",
        rank=2,
        threshold=50_000,
        earn_multiplier_percent=150,
        actor="test",
        now=clock.now(),
    )
    return make_till(session, clock)


def _buy(session, shop, keys, clock, member, amount, external_id):
    result = sell(
        session,
        shop,
        keys,
        clock,
        member=member,
        external_id=external_id,
        lines=[BasketLine(f"SKU-{external_id}", 1, amount)],
    ).result
    return stored(result)


def _tier(session, member, clock):
    tier = current_tier(session, member.id, clock.now())
    return tier.code if tier else None


def _review(session, clock):
    return review_tiers(session, get_program(session), clock.now())


def test_a_year_of_upgrades_grace_and_downgrades(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    first = _buy(session, shop, keys, clock, member, 6_000, "a")
    assert (first["tier"], first["tier_changed"]) == (None, False)

    clock.advance(timedelta(days=10))
    crossing = _buy(session, shop, keys, clock, member, 5_000, "b")
    assert crossing["tier"]["code"] == "SILVER"
    assert crossing["tier_changed"] is True

    # A return takes the member below the threshold: nothing bounces at the till.
    record_return(
        session,
        terminal=shop.terminal,
        sale_external_id="b",
        now=clock.now(),
        request=ReturnRequest(external_id="b-back", lines=[("SKU-b", 1)]),
    )
    assert _tier(session, member, clock) == "SILVER"

    # The review finds them below: the grace period starts, the tier stays.
    report = _review(session, clock)
    assert (report.grace_started, report.downgraded) == (1, 0)
    clock.advance(timedelta(days=20))
    assert _review(session, clock).downgraded == 0
    assert _tier(session, member, clock) == "SILVER"

    # Buying again within the grace period keeps the tier and ends the grace.
    _buy(session, shop, keys, clock, member, 5_000, "c")
    assert _review(session, clock).grace_started == 0
    clock.advance(timedelta(days=60))
    assert _review(session, clock).downgraded == 0
    assert _tier(session, member, clock) == "SILVER"

    # A year on, those purchases have left the 12-month window.
    clock.advance(timedelta(days=300))
    assert _review(session, clock).grace_started == 1
    clock.advance(timedelta(days=31))
    report = _review(session, clock)
    assert report.downgraded == 1
    assert _tier(session, member, clock) is None


def test_a_big_sale_jumps_straight_to_the_highest_tier_reached(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    result = _buy(session, shop, keys, clock, member, 60_000, "big")
    assert result["tier"]["code"] == "GOLD"


def test_a_downgrade_goes_to_the_tier_still_reached(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    _buy(session, shop, keys, clock, member, 20_000, "silver-part")
    _buy(session, shop, keys, clock, member, 40_000, "gold-part")
    assert _tier(session, member, clock) == "GOLD"
    record_return(
        session,
        terminal=shop.terminal,
        sale_external_id="gold-part",
        now=clock.now(),
        request=ReturnRequest(external_id="r", lines=[("SKU-gold-part", 1)]),
    )
    _review(session, clock)
    clock.advance(timedelta(days=30))
    assert _review(session, clock).downgraded == 1
    assert _tier(session, member, clock) == "SILVER"


def test_a_tier_given_by_staff_is_a_floor_until_its_end_date(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    _buy(session, shop, keys, clock, member, 12_000, "s")
    until = clock.now() + timedelta(days=90)
    set_floor(
        session,
        member_id=member.id,
        tier_code="GOLD",
        until=until,
        actor="staff:1",
        now=clock.now(),
    )
    assert _tier(session, member, clock) == "GOLD"
    clock.advance(timedelta(days=60))
    _review(session, clock)
    assert _tier(session, member, clock) == "GOLD"
    clock.advance(timedelta(days=31))  # the floor has ended; the member still reaches Silver
    assert _review(session, clock).floors_ended == 1
    assert _tier(session, member, clock) == "SILVER"


def test_a_floor_below_the_tier_held_changes_nothing(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    _buy(session, shop, keys, clock, member, 60_000, "g")
    set_floor(
        session,
        member_id=member.id,
        tier_code="SILVER",
        until=None,
        actor="staff:1",
        now=clock.now(),
    )
    assert _tier(session, member, clock) == "GOLD"


def test_points_can_be_the_qualifying_basis(session, shop, keys, clock):
    update_program(session, actor="test", now=clock.now(), tier_basis="points")
    member, _ = make_member(session, keys, clock)
    result = _buy(session, shop, keys, clock, member, 9_999, "p")  # 99 points
    assert result["tier"] is None
    # thresholds now read as points: Silver at 10,000 points
    assert progress(session, member.id, get_program(session), clock.now()).needed == 9_901


def test_progress_says_what_the_next_tier_needs_and_until_when_purchases_count(
    session, shop, keys, clock
):
    member, _ = make_member(session, keys, clock)
    _buy(session, shop, keys, clock, member, 30_000, "x")
    clock.advance(timedelta(days=5))
    standing = progress(session, member.id, get_program(session), clock.now())
    assert standing.tier.code == "SILVER"
    assert standing.next_tier.code == "GOLD"
    assert (standing.qualifying, standing.needed) == (30_000, 20_000)
    assert standing.counts_until.date().isoformat() == "2027-03-14"


def test_a_partial_return_counts_what_was_kept_to_the_minor_unit(session, shop, keys, clock):
    """Spend kept after a return is paid * kept // sold, rounded down: the same figure on both
    databases and in the return's own points arithmetic (PostgreSQL once rounded it up)."""
    member, _ = make_member(session, keys, clock)
    give_points(session, member.id, 10_000, clock.now())
    sale = sell(
        session,
        shop,
        keys,
        clock,
        member=member,
        external_id="thirds",
        lines=[BasketLine("SKU-T", 3, 10_000)],
        redeem=500,
    ).result
    paid = sale.total
    assert paid % 3 != 0
    record_return(
        session,
        terminal=shop.terminal,
        sale_external_id="thirds",
        request=ReturnRequest("r-thirds", [("SKU-T", 1)]),
        now=clock.now(),
    )
    standing = progress(session, member.id, get_program(session), clock.now())
    assert standing.qualifying == paid * 2 // 3


def test_a_sale_from_before_the_window_counts_nothing_towards_a_tier(session, shop, keys, clock):
    member, _ = make_member(session, keys, clock)
    old = sell(
        session,
        shop,
        keys,
        clock,
        member=member,
        external_id="offline",
        lines=[BasketLine("SKU-O", 1, 60_000)],
        occurred_at=clock.now() - timedelta(days=400),
    ).result
    assert (old.tier, old.tier_changed) == (None, False)
    recent = _buy(session, shop, keys, clock, member, 10_000, "recent")
    assert (recent["tier"]["code"], recent["tier_changed"]) == ("SILVER", True)


def test_the_review_leaves_anonymous_sales_out(session, shop, keys, clock):
    """Sales without a member group under no member: they reach no tier and break nothing."""
    sell(session, shop, keys, clock, lines=[BasketLine("SKU-ANON", 1, 60_000)])
    member, _ = make_member(session, keys, clock)
    _buy(session, shop, keys, clock, member, 10_000, "known")

    report = _review(session, clock)

    assert (report.upgraded, report.grace_started, report.downgraded) == (0, 0, 0)
    assert _tier(session, member, clock) == "SILVER"
