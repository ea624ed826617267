"""Offers and coupons through HTTP, as a marketer and a till see them: what a coupon takes off
line by line, why a coupon does not apply, redeeming it exactly once with the sale, giving it
back on a full return, codes made in bulk, coupons assigned to members and scanned at the
till."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.coupons.models import Coupon, CouponRedemption, Offer
from loyalty.members.models import Member
from loyalty.settings import LookupKeys
from tests.api.test_bad_input import assert_problem
from tests.factories import (
    Till,
    give_points,
    make_member,
    make_till,
    qr_of,
    sale_body,
    staff_headers,
)

API = "/api/v1"
# the basket of tests.factories.sale_body: 250 + 250 + 899 + 180 + 199
LINES = [250, 250, 899, 180, 199]
SUBTOTAL = sum(LINES)


@pytest.fixture
def marketer(session: Session, clock: FixedClock) -> dict[str, str]:
    return staff_headers(session, clock, "offers")


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock, store_code="MAIN")


@pytest.fixture
def shopper(
    session: Session, keys: LookupKeys, clock: FixedClock, till: Till
) -> tuple[Member, str]:
    member, card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    return member, qr_of(card, keys)


def new_offer(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Offer", "kind": "percent_off", "value": 10} | fields
    response = client.post(f"{API}/offers", headers=headers, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def shared(client: FlaskClient, headers: dict[str, str], offer_id: int, code: str) -> None:
    response = client.post(
        f"{API}/offers/{offer_id}/shared-codes", headers=headers, json={"code": code}
    )
    assert response.status_code == 201, response.get_json()


def quote(
    client: FlaskClient, till: Till, code: str | None, coupons: list[str], clock: FixedClock
) -> dict[str, Any]:
    body = sale_body("q", code, clock.now(), coupon_codes=coupons)
    del body["external_id"], body["occurred_at"]
    response = client.post(f"{API}/pos/quote", headers=till.headers, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sell(
    client: FlaskClient,
    till: Till,
    code: str | None,
    coupons: list[str],
    clock: FixedClock,
    external_id: str,
):
    body = sale_body(external_id, code, clock.now(), coupon_codes=coupons)
    return client.post(f"{API}/pos/transactions", headers=till.headers, json=body)


def test_a_percent_coupon_takes_its_share_of_each_line_rounded_down_and_the_sale_redeems_it_once(
    client: FlaskClient, session: Session, marketer, till, shopper, clock
):
    member, qr = shopper
    offer = new_offer(client, marketer, name="Summer 10 %", value=10)
    shared(client, marketer, offer["id"], "SUMMER10")

    priced = quote(client, till, qr, ["summer-10"], clock)
    # 10 % of each line, rounded down per line: 25 + 25 + 89 + 18 + 19 = 176
    assert [d["amount"] for d in priced["discounts"]] == [25, 25, 89, 18, 19]
    assert {d["kind"] for d in priced["discounts"]} == {"coupon"}
    assert priced["discount_total"] == 176
    assert priced["total"] == SUBTOTAL - 176
    assert priced["points"]["earned"] == (SUBTOTAL - 176) // 100
    [outcome] = priced["coupons"]
    assert outcome | {"message": None} == {
        "code": "SUMMER10",
        "applied": True,
        "reason": None,
        "message": None,
        "offer_id": offer["id"],
        "amount": 176,
        "points": 0,
    }

    first = sell(client, till, qr, ["SUMMER10"], clock, "S-1")
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["total"] == SUBTOTAL - 176
    replay = sell(client, till, qr, ["SUMMER10"], clock, "S-1")
    assert replay.status_code == 200
    assert replay.get_data() == first.get_data()
    redemptions = session.scalars(select(CouponRedemption)).all()
    assert [(r.amount, r.member_id) for r in redemptions] == [(176, member.id)]
    assert (
        client.get(f"{API}/offers/{offer['id']}", headers=marketer).get_json()["redeemed_count"]
        == 1
    )


def test_a_points_redemption_applies_after_the_coupons_on_what_the_lines_still_cost(
    client, session, marketer, till, shopper, clock
):
    member, qr = shopper
    give_points(session, member.id, 500, clock.now())
    offer = new_offer(client, marketer, kind="amount_off", value=300)
    shared(client, marketer, offer["id"], "TAKE300")
    body = sale_body("q", qr, clock.now(), coupon_codes=["TAKE300"], redeem_points=100)
    del body["external_id"], body["occurred_at"]
    priced = client.post(f"{API}/pos/quote", headers=till.headers, json=body).get_json()
    coupon_lines = [d["amount"] for d in priced["discounts"] if d["kind"] == "coupon"]
    point_lines = [d["amount"] for d in priced["discounts"] if d["kind"] == "points"]
    assert sum(coupon_lines) == 300
    assert sum(point_lines) == 100  # 100 points are worth 1.00
    assert priced["total"] == SUBTOTAL - 400


def test_a_members_single_use_coupon_is_in_their_wallet_scans_like_a_card_and_is_used_up(
    client, session, marketer, till, shopper, clock
):
    member, qr = shopper
    offer = new_offer(
        client, marketer, name="Welcome back", kind="amount_off", value=200, uses_per_coupon=1
    )
    assigned = client.post(
        f"{API}/offers/{offer['id']}/assignments",
        headers=marketer,
        json={"member_ids": [member.id, 999_999]},
    ).get_json()
    assert assigned == {"assigned": 1, "already_had": 0, "not_members": [999_999]}
    again = client.post(
        f"{API}/offers/{offer['id']}/assignments",
        headers=marketer,
        json={"member_ids": [member.id]},
    ).get_json()
    assert again == {"assigned": 0, "already_had": 1, "not_members": []}

    identified = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": qr})
    [coupon] = identified.get_json()["coupons"]
    assert coupon["offer"] == "Welcome back"
    assert coupon["gives"] == "200 off the basket"
    assert coupon["uses_left"] == 1
    code = coupon["code"]

    scanned = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": code.lower()})
    assert scanned.status_code == 200, scanned.get_json()
    assert scanned.get_json()["member"]["id"] == member.id
    assert scanned.get_json()["scanned_coupon"]["code"] == code

    # the coupon's code alone, as `code`, names the buyer and applies the coupon
    sold = sell(client, till, code, [], clock, "S-2")
    assert sold.status_code == 201, sold.get_json()
    assert sold.get_json()["member_id"] == member.id
    assert sold.get_json()["discount_total"] == 200

    used = quote(client, till, qr, [code], clock)["coupons"][0]
    assert (used["applied"], used["reason"]) == (False, "used_up")
    after = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": qr})
    assert after.get_json()["coupons"] == []


def test_a_full_return_gives_the_coupon_back_and_a_partial_one_keeps_it(
    client, session, marketer, till, shopper, clock
):
    _member, qr = shopper
    offer = new_offer(client, marketer, kind="amount_off", value=100, total_redemptions=2)
    shared(client, marketer, offer["id"], "ONCE100")
    assert sell(client, till, qr, ["ONCE100"], clock, "S-3").status_code == 201
    assert sell(client, till, qr, ["ONCE100"], clock, "S-4").status_code == 201
    spent = quote(client, till, qr, ["ONCE100"], clock)["coupons"][0]
    assert spent["reason"] == "used_up"

    partial = client.post(
        f"{API}/pos/transactions/S-3/returns",
        headers=till.headers,
        json={"external_id": "R-1", "lines": [{"sku": "MILK", "quantity": 1}]},
    )
    assert partial.status_code == 201, partial.get_json()
    assert partial.get_json()["coupons_returned"] == 0
    assert quote(client, till, qr, ["ONCE100"], clock)["coupons"][0]["reason"] == "used_up"

    voided = client.post(f"{API}/pos/transactions/S-4/void", headers=till.headers)
    assert voided.status_code == 201, voided.get_json()
    assert voided.get_json()["coupons_returned"] == 1
    back = quote(client, till, qr, ["ONCE100"], clock)["coupons"][0]
    assert back["applied"] is True
    view = client.get(f"{API}/offers/{offer['id']}", headers=marketer).get_json()
    assert (view["redeemed_count"], view["redemptions_left"], view["budget_used"]) == (1, 1, 100)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ends_at": "2026-01-01T00:00:00+00:00"}, "expired"),
        ({"starts_at": "2099-01-01T00:00:00+00:00"}, "not_started"),
        ({"min_basket": SUBTOTAL + 1}, "min_basket"),
        ({"stores": ["OTHER"]}, "not_in_store"),
        ({"tiers": ["GOLD"]}, "tier"),
        ({"budget": 100}, "budget_exhausted"),  # 10 % is 176 here
        ({"uses_per_member": 1}, "member_limit"),
    ],
)
def test_a_coupon_that_does_not_apply_says_why(
    client, session, marketer, till, shopper, clock, fields, reason
):
    from loyalty.stores.services import create_store  # noqa: PLC0415
    from loyalty.tiers.models import Tier  # noqa: PLC0415

    create_store(session, code="OTHER", name="Other", actor="test", now=clock.now())
    session.add(
        Tier(
            code="GOLD",
            name="Gold",
            rank=1,
            threshold=10**9,
            earn_multiplier_percent=100,
            perks="",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
    )
    session.flush()
    _member, qr = shopper
    offer = new_offer(client, marketer, **fields)
    shared(client, marketer, offer["id"], "WHY10")
    if reason == "member_limit":
        assert sell(client, till, qr, ["WHY10"], clock, "S-5").status_code == 201
    [outcome] = quote(client, till, qr, ["WHY10"], clock)["coupons"]
    assert outcome["applied"] is False
    assert outcome["reason"] == reason
    assert outcome["message"]
    assert quote(client, till, qr, ["NOSUCHCODE"], clock)["coupons"][0]["reason"] == "unknown"


def test_an_exclusive_coupon_combines_with_no_other_and_a_member_coupon_with_no_other_member(
    client, session, keys, marketer, till, shopper, clock
):
    _member, qr = shopper
    solo = new_offer(client, marketer, name="Solo", exclusive=True)
    friendly = new_offer(client, marketer, name="Friendly", kind="amount_off", value=50)
    shared(client, marketer, solo["id"], "SOLO")
    shared(client, marketer, friendly["id"], "FRIEND")
    outcomes = quote(client, till, qr, ["SOLO", "FRIEND", "SOLO"], clock)["coupons"]
    assert [(o["applied"], o["reason"]) for o in outcomes] == [
        (True, None),
        (False, "not_combinable"),
        (False, "not_combinable"),
    ]

    other, card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    mine = new_offer(client, marketer, name="Mine", kind="amount_off", value=10)
    client.post(
        f"{API}/offers/{mine['id']}/assignments", headers=marketer, json={"member_ids": [other.id]}
    )
    code = session.scalar(select(Coupon.code).where(Coupon.member_id == other.id))
    assert quote(client, till, qr, [code], clock)["coupons"][0]["reason"] == "not_this_member"
    assert quote(client, till, None, [code], clock)["coupons"][0]["reason"] == "not_this_member"
    assert quote(client, till, qr_of(card, keys), [code], clock)["coupons"][0]["applied"] is True


def test_extra_points_and_a_multiplier_add_to_what_the_rules_earn(
    client, marketer, till, shopper, clock
):
    _member, qr = shopper
    extra = new_offer(client, marketer, name="Bonus", kind="extra_points", value=50)
    double = new_offer(client, marketer, name="Double", kind="points_multiplier", value=200)
    shared(client, marketer, extra["id"], "BONUS50")
    shared(client, marketer, double["id"], "DOUBLE")
    priced = quote(client, till, qr, ["BONUS50", "DOUBLE"], clock)
    base = SUBTOTAL // 100  # the program's rate: 1 point per 1.00
    assert priced["points"]["earned"] == base + base + 50
    assert priced["total"] == SUBTOTAL
    assert [o["points"] for o in priced["coupons"]] == [50, base]


def test_a_next_visit_coupon_is_issued_at_a_qualifying_sale_and_works_from_the_next_day(
    client, session, marketer, till, shopper, clock
):
    _member, qr = shopper
    new_offer(
        client,
        marketer,
        name="Come back",
        kind="amount_off",
        value=150,
        issue_at_sale_min=1000,
        coupon_valid_days=7,
        uses_per_coupon=1,
    )
    sold = sell(client, till, qr, [], clock, "S-6").get_json()
    [code] = sold["next_visit_coupons"]
    assert quote(client, till, qr, [code], clock)["coupons"][0]["reason"] == "not_started"
    clock.advance(timedelta(days=1))
    assert quote(client, till, qr, [code], clock)["coupons"][0]["applied"] is True
    clock.advance(timedelta(days=8))
    assert quote(client, till, qr, [code], clock)["coupons"][0]["reason"] == "expired"


def test_unique_codes_are_made_to_the_pattern_without_look_alikes_and_exported_for_printing(
    client, session, marketer
):
    offer = new_offer(client, marketer)
    made = client.post(
        f"{API}/offers/{offer['id']}/code-batches",
        headers=marketer,
        json={"count": 2000, "pattern": "SP-####-####"},
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["made"] == 2000
    assert made.get_json()["status"] == "done"
    export = client.get(made.headers["Location"] + "/codes.csv", headers=marketer)
    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0] == "code,offer_id"
    codes = [line.split(",")[0] for line in lines[1:]]
    assert len(codes) == len(set(codes)) == 2000
    assert all(c.startswith("SP-") and len(c) == 12 for c in codes)
    assert not any(set(c) & set("OILU") for c in codes)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": 10, "pattern": "NOPLACEHOLDERS"}, "pattern"),
        ({"count": 10, "pattern": "SP ##"}, "pattern"),
        ({"count": 1000, "pattern": "##"}, "count"),
        ({"count": 0, "length": 8}, "count"),
        ({"count": 5, "length": 8, "prefix": "'; DROP TABLE coupons;--"}, "prefix"),
        ({"count": 5, "length": 8, "charset": "AAB"}, "charset"),
        ({"count": 5, "length": 8, "charset": "0O123456789"}, "charset"),
    ],
)
def test_a_bad_generation_spec_is_refused_with_the_field_and_nothing_made(
    client, session, marketer, body, field
):
    offer = new_offer(client, marketer)
    before = session.scalar(select(func.count()).select_from(Coupon))
    response = client.post(f"{API}/offers/{offer['id']}/code-batches", headers=marketer, json=body)
    assert_problem(response, 422, field)
    assert session.scalar(select(func.count()).select_from(Coupon)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "percent_off", "value": 150}, "value"),
        ({"kind": "percent_off", "value": 10, "uses_per_coupon": -1}, "uses_per_coupon"),
        ({"kind": "amount_off", "value": 10, "budget": 0}, "budget"),
        (
            {
                "kind": "amount_off",
                "value": 10,
                "starts_at": "2027-02-01T00:00:00+00:00",
                "ends_at": "2027-01-01T00:00:00+00:00",
            },
            "ends_at",
        ),
        ({"kind": "amount_off", "value": 10, "combinable_with": [987654]}, "combinable_with"),
        ({"kind": "free_units", "value": 0}, "buy_quantity"),
        ({"kind": "amount_off", "value": 10, "target": "items"}, "skus"),
        ({"kind": "amount_off", "value": 10, "stores": ["'; DROP TABLE offers;--"]}, "stores.0"),
        ({"kind": "teleport", "value": 10}, "kind"),
    ],
)
def test_a_bad_offer_is_refused_with_the_field_and_nothing_written(
    client, session, marketer, body, field
):
    before = session.scalar(select(func.count()).select_from(Offer))
    response = client.post(f"{API}/offers", headers=marketer, json={"name": "Bad"} | body)
    assert_problem(response, 422, field)
    assert session.scalar(select(func.count()).select_from(Offer)) == before


def test_a_change_to_an_offer_is_audited_and_never_alters_what_was_redeemed(
    client, session, marketer, till, shopper, clock
):
    _member, qr = shopper
    offer = new_offer(client, marketer, value=10)
    shared(client, marketer, offer["id"], "CHANGE")
    assert sell(client, till, qr, ["CHANGE"], clock, "S-7").status_code == 201
    changed = client.patch(f"{API}/offers/{offer['id']}", headers=marketer, json={"value": 50})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2
    [redemption] = session.scalars(select(CouponRedemption)).all()
    assert (redemption.amount, redemption.offer_version) == (176, 1)
    assert quote(client, till, qr, ["CHANGE"], clock)["discount_total"] == 125 + 125 + 449 + 90 + 99
    archived = client.post(f"{API}/offers/{offer['id']}/archive", headers=marketer)
    assert archived.get_json()["status"] == "archived"
    assert quote(client, till, qr, ["CHANGE"], clock)["coupons"][0]["reason"] == "unknown"
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_type == "offer").order_by(AuditEntry.id)
    ).all()
    assert actions == ["offer.create", "coupon.create_shared", "offer.update", "offer.archive"]


def test_offers_need_a_staff_key_with_the_offers_scope(client, session, clock, till):
    members_only = staff_headers(session, clock, "members")
    assert client.get(f"{API}/offers", headers=members_only).status_code == 403
    assert client.get(f"{API}/offers", headers=till.headers).status_code in (401, 403)


def test_a_reward_bought_with_points_issues_its_coupon_and_cancelling_it_unused_gives_them_back(
    client, session, keys, marketer, till, shopper, clock
):
    member, qr = shopper
    give_points(session, member.id, 400, clock.now())
    coffee = new_offer(
        client,
        marketer,
        name="Free coffee",
        kind="fixed_price",
        value=0,
        target="items",
        skus=["COFFEE"],
        uses_per_coupon=1,
    )
    created = client.post(
        f"{API}/rewards",
        headers=marketer,
        json={"name": "Free coffee", "offer_id": coffee["id"], "points_cost": 300, "stock": 1},
    )
    assert created.status_code == 201, created.get_json()
    reward = created.get_json()
    assert (reward["left"], reward["gives"]) == (1, "listed items for 0 each")
    catalogue = client.get(f"{API}/rewards", headers=till.headers).get_json()["rewards"]
    assert [r["name"] for r in catalogue] == ["Free coffee"]

    headers = till.headers | {"Idempotency-Key": "claim-1"}
    claimed = client.post(
        f"{API}/members/{member.id}/rewards", headers=headers, json={"reward_id": reward["id"]}
    )
    assert claimed.status_code == 201, claimed.get_json()
    assert claimed.get_json()["balance"] == {"available": 100, "pending": 0}
    retried = client.post(
        f"{API}/members/{member.id}/rewards", headers=headers, json={"reward_id": reward["id"]}
    )
    assert retried.status_code == 200
    assert retried.get_data() == claimed.get_data()
    code = claimed.get_json()["coupon_code"]
    wallet = client.get(f"{API}/members/{member.id}/coupons", headers=till.headers).get_json()
    assert [c["code"] for c in wallet["coupons"]] == [code]

    other, _card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    give_points(session, other.id, 400, clock.now())
    sold_out = client.post(
        f"{API}/members/{other.id}/rewards", headers=till.headers, json={"reward_id": reward["id"]}
    )
    assert_problem(sold_out, 409, "reward_id")

    # the coupon makes the coffee free at the till
    priced = quote(client, till, qr, [code], clock)
    assert [(d["sku"], d["amount"]) for d in priced["discounts"]] == [("COFFEE", 899)]

    cancelled = client.post(f"{API}/coupons/{code}/cancel", headers=marketer)
    assert cancelled.get_json()["status"] == "cancelled"
    balance = client.get(f"{API}/members/{member.id}/coupons", headers=till.headers).get_json()
    assert balance["coupons"] == []
    identified = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": qr})
    assert identified.get_json()["balance"] == {"available": 400, "pending": 0}
    again = client.post(f"{API}/coupons/{code}/cancel", headers=marketer)
    assert again.status_code == 200
    identified = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": qr})
    assert identified.get_json()["balance"]["available"] == 400  # refunded once


def test_a_reward_the_member_cannot_afford_takes_nothing(
    client, session, marketer, till, shopper, clock
):
    member, _qr = shopper
    offer = new_offer(client, marketer)
    reward = client.post(
        f"{API}/rewards",
        headers=marketer,
        json={"name": "Ten off", "offer_id": offer["id"], "points_cost": 1000, "stock": 5},
    ).get_json()
    response = client.post(
        f"{API}/members/{member.id}/rewards", headers=till.headers, json={"reward_id": reward["id"]}
    )
    assert_problem(response, 409)
    assert client.get(f"{API}/rewards", headers=marketer).get_json()["rewards"][0]["left"] == 5
    assert session.scalar(select(func.count()).select_from(Coupon)) == 0


def test_a_coupons_qr_decodes_to_its_code(client, session, marketer):
    offer = new_offer(client, marketer)
    shared(client, marketer, offer["id"], "QRCODE1")
    svg = client.get(f"{API}/coupons/qrcode1/qr.svg", headers=marketer)
    png = client.get(f"{API}/coupons/QRCODE1/qr.png", headers=marketer)
    assert svg.status_code == png.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    assert png.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.get_data())).convert("L"))
    assert decoded.text == "QRCODE1"


def test_guessing_coupon_codes_through_quotes_and_sales_is_budgeted_and_a_card_still_scans(
    client, session, keys, marketer, till, shopper, clock
):
    _member, qr = shopper
    offer = new_offer(client, marketer, kind="amount_off", value=100)
    shared(client, marketer, offer["id"], "REALCODE")
    body = sale_body("q", qr, clock.now())
    del body["external_id"], body["occurred_at"]
    statuses = [
        client.post(
            f"{API}/pos/quote", headers=till.headers, json=body | {"coupon_codes": [f"GUESS{n}"]}
        ).status_code
        for n in range(29)
    ]
    # a sale with a code nobody has is not recorded, and counts as a failed look-up too
    sold = client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body("GUESS-SALE", qr, clock.now(), coupon_codes=["GUESSSALE"]),
    )
    assert_problem(sold, 404, "coupon_codes")
    # 30 failed look-ups a minute (LOYALTY_IDENTIFY_FAILURES_PER_MINUTE): the 31st is refused
    statuses += [
        client.post(
            f"{API}/pos/quote", headers=till.headers, json=body | {"coupon_codes": [f"MORE{n}"]}
        ).status_code
        for n in range(2)
    ]
    assert statuses == [200] * 29 + [429] * 2
    # typed codes wait, the real one too (a till over budget could be guessing)...
    real = client.post(
        f"{API}/pos/quote", headers=till.headers, json=body | {"coupon_codes": ["REALCODE"]}
    )
    assert real.status_code == 429
    assert real.headers["Retry-After"]
    # ...while a scanned card without coupons is still served
    assert client.post(f"{API}/pos/quote", headers=till.headers, json=body).status_code == 200
    # and the member's own budget is spent: guessing for them from another till is refused
    other = make_till(session, clock, store_code="SECOND")
    again = client.post(
        f"{API}/pos/quote", headers=other.headers, json=body | {"coupon_codes": ["GUESSAGAIN"]}
    )
    assert again.status_code == 429


def test_a_long_list_is_assigned_by_a_job_in_batches_and_running_it_again_gives_nobody_two(
    client, session, keys, marketer, clock
):
    from loyalty.coupons.services import (  # noqa: PLC0415
        ASSIGN_BATCH,
        assign_pending,
        get_assignment,
    )

    members = [make_member(session, keys, clock)[0].id for _ in range(3)]
    offer = new_offer(client, marketer, name="For the list")
    # past ASSIGN_BATCH ids: the request is queued for the job, not done in the request
    ids = members + list(range(10**9, 10**9 + ASSIGN_BATCH))
    queued = client.post(
        f"{API}/offers/{offer['id']}/assignments", headers=marketer, json={"member_ids": ids}
    )
    assert queued.status_code == 202, queued.get_json()
    assert queued.get_json()["status"] == "queued"
    job_id = queued.get_json()["id"]
    assert client.get(queued.headers["Location"], headers=marketer).get_json()["processed"] == 0

    seen: list[int] = []
    assign_pending(session, clock.now, checkpoint=session.flush, progress=seen.append)
    done = get_assignment(session, job_id)
    assert (done.status, done.processed, done.assigned) == ("done", len(ids), 3)
    assert done.not_members == ASSIGN_BATCH
    assert sum(seen) == len(ids)
    assert len(seen) == 2  # two batches, each reported

    again = client.post(
        f"{API}/offers/{offer['id']}/assignments", headers=marketer, json={"member_ids": members}
    )
    assert again.get_json() == {"assigned": 0, "already_had": 3, "not_members": []}
    assert (
        session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.offer_id == offer["id"])
        )
        == 3
    )


def test_a_reward_coupon_works_once_and_once_used_gives_no_points_back_when_cancelled(
    client, session, marketer, till, shopper, clock
):
    member, qr = shopper
    give_points(session, member.id, 300, clock.now())
    offer = new_offer(client, marketer, kind="amount_off", value=500)  # no uses_per_coupon
    reward = client.post(
        f"{API}/rewards",
        headers=marketer,
        json={"name": "Five off", "offer_id": offer["id"], "points_cost": 300},
    ).get_json()
    claimed = client.post(
        f"{API}/members/{member.id}/rewards", headers=till.headers, json={"reward_id": reward["id"]}
    ).get_json()
    code = claimed["coupon_code"]
    assert sell(client, till, qr, [code], clock, "R-USE-1").status_code == 201
    second = sell(client, till, qr, [code], clock, "R-USE-2")
    assert_problem(second, 409, "coupon_codes")
    assert "used_up" in second.get_json()["errors"]["coupon_codes"][0]
    before = _balance_of(client, till, qr)
    client.post(f"{API}/coupons/{code}/cancel", headers=marketer)
    assert _balance_of(client, till, qr) == before  # used: nothing to give back


def _balance_of(client, till, qr):
    return client.post(f"{API}/pos/identify", headers=till.headers, json={"code": qr}).get_json()[
        "balance"
    ]


def test_a_sale_refuses_a_coupon_that_no_longer_applies_instead_of_charging_full_price(
    client, session, keys, marketer, till, shopper, clock
):
    _member, qr = shopper
    offer = new_offer(client, marketer, kind="amount_off", value=500, total_redemptions=1)
    shared(client, marketer, offer["id"], "LASTONE")
    quoted = quote(client, till, qr, ["LASTONE"], clock)
    assert quoted["total"] == SUBTOTAL - 500
    _other, card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    assert sell(client, till, qr_of(card, keys), ["LASTONE"], clock, "TAKES-IT").status_code == 201
    late = sell(client, till, qr, ["LASTONE"], clock, "TOO-LATE")
    problem = assert_problem(late, 409, "coupon_codes")
    assert problem["errors"]["coupon_codes"] == ["LASTONE: used_up (this coupon has been used up)"]
    assert client.get(f"{API}/pos/transactions/TOO-LATE", headers=till.headers).status_code == 404


def test_all_digit_coupon_codes_guessed_at_identify_count_as_failed_look_ups(
    client, marketer, till
):
    offer = new_offer(client, marketer)
    made = client.post(
        f"{API}/offers/{offer['id']}/code-batches",
        headers=marketer,
        json={"count": 10, "pattern": "####-####", "charset": "23456789"},
    )
    assert made.status_code == 201, made.get_json()
    statuses = [
        client.post(
            f"{API}/pos/identify", headers=till.headers, json={"code": f"2345-{n:04d}"}
        ).status_code
        for n in range(32)
    ]
    assert set(statuses[:30]) <= {404, 422}
    assert statuses[30:] == [429, 429]


def test_a_cancelled_coupon_identifies_nobody(client, session, keys, marketer, till, clock):
    member, _card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    offer = new_offer(client, marketer)
    client.post(
        f"{API}/offers/{offer['id']}/assignments",
        headers=marketer,
        json={"member_ids": [member.id]},
    )
    code = session.scalar(select(Coupon.code).where(Coupon.member_id == member.id))
    client.post(f"{API}/coupons/{code}/cancel", headers=marketer)
    found = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": code})
    assert found.status_code in (404, 422)


def test_next_visit_coupons_of_a_voided_sale_stop_working(client, marketer, till, shopper, clock):
    _member, qr = shopper
    new_offer(
        client, marketer, kind="amount_off", value=150, issue_at_sale_min=1000, coupon_valid_days=7
    )
    [code] = sell(client, till, qr, [], clock, "NV-1").get_json()["next_visit_coupons"]
    assert client.post(f"{API}/pos/transactions/NV-1/void", headers=till.headers).status_code == 201
    clock.advance(timedelta(days=1))
    assert quote(client, till, qr, [code], clock)["coupons"][0]["reason"] == "unknown"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "amount_off", "value": 10, "coupon_valid_days": 3_000_000}, "coupon_valid_days"),
        ({"kind": "amount_off", "value": 10, "uses_per_coupon": 2**40}, "uses_per_coupon"),
        ({"kind": "extra_points", "value": 10, "target": "items", "skus": ["X"]}, "target"),
    ],
)
def test_limits_the_database_cannot_hold_and_points_on_items_are_refused(
    client, session, marketer, fields, field
):
    response = client.post(f"{API}/offers", headers=marketer, json={"name": "Big"} | fields)
    assert_problem(response, 422, field)


def test_a_baskets_coupon_codes_are_looked_up_in_one_query(
    client, session, marketer, till, shopper, clock, count_queries
):
    _member, qr = shopper
    for code in ("ONEQ1", "ONEQ2", "ONEQ3"):
        offer = new_offer(client, marketer, kind="amount_off", value=10)
        shared(client, marketer, offer["id"], code)
    with count_queries() as statements:
        priced = quote(client, till, qr, ["oneq1", "ONEQ2", "ONE-Q3", "NOPE"], clock)
    assert [c["applied"] for c in priced["coupons"]] == [True, True, True, False]
    lookups = [s for s in statements.sent if "FROM coupons JOIN offers" in s]
    assert len(lookups) == 1, statements.sent
