"""The till contract through HTTP, as a POS integrator sees it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.cards.numbers import format_card_number
from loyalty.clock import FixedClock
from loyalty.ledger.models import PointEntry
from loyalty.sales.models import Sale
from loyalty.settings import LookupKeys
from tests.factories import Till, make_member, make_till, qr_of, sale_body


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


@pytest.fixture
def member_and_code(session: Session, keys: LookupKeys, clock: FixedClock):
    member, card = make_member(
        session, keys, clock, name="Ada Lovelace", email="ada@example.com", phone="020 7946 0018"
    )
    return member, card, qr_of(card, keys)


def _identify(client: FlaskClient, till: Till, code: str):
    return client.post("/api/v1/pos/identify", headers=till.headers, json={"code": code})


def _entries(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PointEntry)) or 0


@pytest.mark.parametrize("form", ["qr", "number", "spaced number", "email", "phone"])
def test_identify_finds_the_member_by_whatever_the_scanner_typed(
    client, till, member_and_code, form
):
    member, card, qr = member_and_code
    code = {
        "qr": qr,
        "number": card.number,
        "spaced number": format_card_number(card.number),
        "email": "  ADA@example.com ",
        "phone": "+44 20 7946 0018",
    }[form]
    response = _identify(client, till, code)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["member"] == {
        "id": member.id,
        "name": "Ada Lovelace",
        "status": "active",
        "email": "a**@example.com",
        "phone": "+44*******018",
    }
    assert body["balance"] == {"available": 0, "pending": 0}
    assert body["coupons"] == []


@pytest.mark.parametrize(
    ("code", "status", "field_message"),
    [
        ("L19123456789012345AAAAAAAAAAAAAAAA", 422, "not one of our cards"),
        ("9123456789012346", 422, "check digit"),
        ("9000000000000001", 404, "no card has this number"),  # valid check digit, no card
        ("nobody@example.com", 404, "no member has this email"),
        ("+44 20 7946 0999", 404, "no member has this phone"),
        ("hello", 422, ""),
    ],
)
def test_identify_refuses_forged_mistyped_and_unknown_codes_clearly(
    client, till, session, code, status, field_message
):
    before = _entries(session)
    response = _identify(client, till, code)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert field_message in " ".join(body["errors"]["code"])
    assert _entries(session) == before


def test_a_blocked_card_is_refused_and_the_replacement_works_with_the_same_points(
    client, till, session, member_and_code, keys, clock
):
    _member, card, qr = member_and_code
    sale = client.post(
        "/api/v1/pos/transactions",
        headers=till.headers,
        json=sale_body("pre-block", qr, clock.now()),
    )
    assert sale.status_code == 201
    replaced = client.post(
        f"/api/v1/cards/{card.number}/replace", headers=till.headers, json={"reason": "lost"}
    )
    assert replaced.status_code == 201
    new_card = replaced.get_json()
    blocked = _identify(client, till, qr)
    assert blocked.status_code == 409
    assert "blocked" in blocked.get_json()["detail"]
    found = _identify(client, till, new_card["qr_payload"])
    assert found.status_code == 200
    assert found.get_json()["balance"]["available"] == sale.get_json()["points"]["earned"] > 0


def test_a_quote_explains_the_sale_and_changes_nothing(
    client, till, session, member_and_code, clock
):
    _member, _card, qr = member_and_code
    client.post(
        "/api/v1/pos/transactions",
        headers=till.headers,
        json=sale_body("earn-first", qr, clock.now()),
    )
    before = _entries(session)
    body = sale_body("ignored", qr, clock.now(), redeem_points=10, coupon_codes=["SPRING10"])
    del body["external_id"], body["occurred_at"]
    response = client.post("/api/v1/pos/quote", headers=till.headers, json=body)
    assert response.status_code == 200, response.get_json()
    quote = response.get_json()
    assert quote["subtotal"] == 250 + 250 + 899 + 180 + 199
    assert quote["discount_total"] == 10
    assert sum(d["amount"] for d in quote["discounts"]) == 10
    assert quote["total"] == quote["subtotal"] - 10
    assert quote["points"]["earned"] == quote["total"] // 100
    assert quote["points"]["reasons"][0]["rule"] == "base"
    assert quote["coupons"] == [
        {
            "code": "SPRING10",
            "applied": False,
            "reason": "unknown",
            "message": "no such coupon",
            "offer_id": None,
            "amount": 0,
            "points": 0,
        }
    ]
    assert quote["balance"] == {"available": 17 - 10 + quote["points"]["earned"], "pending": 0}
    assert _entries(session) == before


def test_a_sale_is_created_once_replayed_with_200_and_a_reused_id_is_409(
    client, till, session, member_and_code, clock
):
    _member, _card, qr = member_and_code
    body = sale_body("till-1-0001", qr, clock.now())
    first = client.post("/api/v1/pos/transactions", headers=till.headers, json=body)
    assert first.status_code == 201
    created = first.get_json()
    assert created["points"]["earned"] == 17
    assert created["balance"] == {"available": 17, "pending": 0}
    assert created["status"] == "completed"
    assert created["tier_changed"] is False
    entries = _entries(session)
    clock.advance(timedelta(hours=3))
    replay = client.post("/api/v1/pos/transactions", headers=till.headers, json=body)
    assert replay.status_code == 200
    assert replay.get_json() == created
    assert _entries(session) == entries
    body["lines"][0]["quantity"] = 3
    conflict = client.post("/api/v1/pos/transactions", headers=till.headers, json=body)
    assert conflict.status_code == 409
    assert conflict.get_json()["errors"] == {"external_id": [conflict.get_json()["detail"]]}


def test_redeeming_more_points_than_available_is_409_and_records_no_sale(
    client, till, session, member_and_code, clock
):
    _member, _card, qr = member_and_code
    response = client.post(
        "/api/v1/pos/transactions",
        headers=till.headers,
        json=sale_body("greedy", qr, clock.now(), redeem_points=5),
    )
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("insufficient-points")
    assert session.scalar(select(Sale).where(Sale.external_id == "greedy")) is None


def test_a_return_and_a_void_through_the_api(client, till, member_and_code, clock):
    _member, _card, qr = member_and_code
    client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body("s-ret", qr, clock.now())
    )
    url = "/api/v1/pos/transactions/s-ret"
    partial = client.post(
        f"{url}/returns",
        headers=till.headers,
        json={"external_id": "ret-1", "lines": [{"sku": "COFFEE", "quantity": 1}]},
    )
    assert partial.status_code == 201
    assert partial.headers["Location"].endswith(f"{url}/returns/ret-1")
    assert client.get(partial.headers["Location"], headers=till.headers).get_json() == (
        partial.get_json()
    )
    assert partial.get_json()["sale_status"] == "partially_returned"
    again = client.post(
        f"{url}/returns",
        headers=till.headers,
        json={"external_id": "ret-1", "lines": [{"sku": "COFFEE", "quantity": 1}]},
    )
    assert again.status_code == 200
    assert again.get_json() == partial.get_json()
    voided = client.post(f"{url}/void", headers=till.headers)
    assert voided.status_code == 201, "a first void answers as a first return does"
    assert voided.headers["Location"].endswith(f"{url}/void")
    assert voided.get_json()["sale_status"] == "voided"
    voided_again = client.post(f"{url}/void", headers=till.headers)
    assert (voided_again.status_code, voided_again.get_json()) == (200, voided.get_json())
    assert voided.get_json()["balance"] == {"available": 0, "pending": 0}
    after_void = client.post(
        f"{url}/returns",
        headers=till.headers,
        json={"external_id": "ret-2", "lines": [{"sku": "SOAP", "quantity": 1}]},
    )
    assert after_void.status_code == 409
    unknown = client.post(
        "/api/v1/pos/transactions/nope/returns",
        headers=till.headers,
        json={"external_id": "ret-3", "lines": [{"sku": "SOAP", "quantity": 1}]},
    )
    assert unknown.status_code == 404


def test_an_anonymous_sale_is_accepted(client, till, clock):
    response = client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body("anon", None, clock.now())
    )
    assert response.status_code == 201
    assert response.get_json()["member_id"] is None
    assert response.get_json()["points"]["earned"] == 0


def test_a_sale_dated_days_in_the_future_is_refused(client, till, member_and_code, clock):
    _member, _card, qr = member_and_code
    response = client.post(
        "/api/v1/pos/transactions",
        headers=till.headers,
        json=sale_body("future", qr, clock.now() + timedelta(days=3)),
    )
    assert response.status_code == 422
    assert "occurred_at" in response.get_json()["errors"]
