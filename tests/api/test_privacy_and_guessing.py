"""Guessing and privacy, as a hostile till or a careless one would meet them: every place that
takes a member's code is budgeted (the failures, not the till: a real card still scans), the
budget survives a Redis outage, and a till sees what a cashier needs of the members it has a
reason to see; full records and QR codes are for staff with the `members` scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from tests.conftest import app_settings, free_port
from tests.factories import Till, make_member, make_till, qr_of, sale_body, staff_headers

API = "/api/v1"
BUDGET = 30  # LOYALTY_IDENTIFY_FAILURES_PER_MINUTE's default


def _lines() -> list[dict[str, Any]]:
    return [{"sku": "TEA", "quantity": 1, "unit_price": 250}]


def _unknown_phone(n: int) -> str:
    return f"+44 20 7946 {n:04d}"


@pytest.mark.parametrize("endpoint", ["quote", "transactions"])
def test_guessing_members_through_a_quote_or_a_sale_is_budgeted_like_identify(
    client: FlaskClient, session: Session, clock: FixedClock, endpoint: str
):
    till = make_till(session, clock)
    statuses = []
    for n in range(BUDGET + 3):
        body: dict[str, Any] = {"code": _unknown_phone(n), "lines": _lines()}
        if endpoint == "transactions":
            body |= {"external_id": f"guess-{n}", "occurred_at": clock.now().isoformat()}
        statuses.append(client.post(f"{API}/pos/{endpoint}", headers=till.headers, json=body))
    codes = [response.status_code for response in statuses]
    assert codes[:BUDGET] == [404] * BUDGET
    assert codes[BUDGET:] == [429] * 3
    assert int(statuses[-1].headers["Retry-After"]) > 0


def test_reads_of_members_by_id_are_budgeted_per_terminal(
    client: FlaskClient, session: Session, clock: FixedClock
):
    till = make_till(session, clock)
    codes = [
        client.get(f"{API}/members/{900_000 + n}", headers=till.headers).status_code
        for n in range(BUDGET + 2)
    ]
    assert codes == [404] * BUDGET + [429] * 2


def test_once_the_budget_is_spent_a_real_card_still_scans_but_typed_codes_wait(
    client: FlaskClient, session: Session, clock: FixedClock, keys: Any
):
    till = make_till(session, clock)
    member, card = make_member(session, keys, clock, phone="+44 20 7946 0999")
    for n in range(BUDGET + 1):
        client.post(f"{API}/pos/identify", headers=till.headers, json={"code": _unknown_phone(n)})

    scanned = client.post(
        f"{API}/pos/identify", headers=till.headers, json={"code": qr_of(card, keys)}
    )
    sold = client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body("after-guessing", qr_of(card, keys), clock.now()),
    )
    typed = client.post(
        f"{API}/pos/identify", headers=till.headers, json={"code": "+44 20 7946 0999"}
    )

    assert scanned.status_code == 200
    assert scanned.get_json()["member"]["id"] == member.id
    assert sold.status_code == 201
    assert typed.status_code == 429, "even a right phone number waits: it could be a guess"


def test_with_redis_unreachable_the_budget_is_kept_in_the_process_instead(
    database_url: str,
    session: Session,
    clock: FixedClock,
    app: Flask,
    own_app: Callable[..., Flask],
):
    till = make_till(session, clock)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    unreachable = own_app(app_settings(database_url, dead))
    client = unreachable.test_client()
    codes = [
        client.post(
            f"{API}/pos/identify", headers=till.headers, json={"code": _unknown_phone(n)}
        ).status_code
        for n in range(BUDGET + 2)
    ]
    assert codes == [404] * BUDGET + [429] * 2


# --- what a till sees -------------------------------------------------------------------------


def test_identify_shows_a_cashier_what_they_need_and_no_qr_code(
    client: FlaskClient, session: Session, clock: FixedClock, keys: Any
):
    till = make_till(session, clock)
    _member, card = make_member(
        session, keys, clock, name="Ada Lovelace", email="ada@example.com", phone="+44 20 7946 0018"
    )

    found = client.post(
        f"{API}/pos/identify", headers=till.headers, json={"code": qr_of(card, keys)}
    )

    body = found.get_json()
    assert body["member"]["name"] == "Ada Lovelace"
    assert body["member"]["email"] == "a**@example.com"
    assert body["member"]["phone"] == "+44*******018"
    assert body["card"] == {"number": f"**** **** **** {card.number[-4:]}", "status": "active"}
    assert "qr_payload" not in found.get_data(as_text=True)
    assert card.number not in found.get_data(as_text=True)


def _member_of(till: Till, session: Session, keys: Any, clock: FixedClock) -> tuple[Any, Any]:
    """A member enrolled at another store than `till`'s."""
    member, card = make_member(session, keys, clock, email="far@example.com")
    return member, card


def test_a_till_reads_members_of_its_own_store_or_whom_it_identified_and_masked(
    client: FlaskClient, session: Session, clock: FixedClock, keys: Any
):
    home = make_till(session, clock)
    elsewhere = make_till(session, clock)
    joined = client.post(
        f"{API}/members", headers=home.headers, json={"name": "Ann", "email": "ann@example.com"}
    ).get_json()
    url = f"{API}/members/{joined['id']}"

    assert client.get(url, headers=elsewhere.headers).status_code == 404
    assert client.patch(url, headers=elsewhere.headers, json={"name": "X"}).status_code == 404
    at_home = client.get(url, headers=home.headers).get_json()
    assert at_home["email"] == "a**@example.com"
    assert at_home["cards"][0]["qr_payload"] is None
    assert at_home["cards"][0]["number"].startswith("**** ")

    code = joined["cards"][0]["qr_payload"]  # the card she shows at the other shop
    assert (
        client.post(
            f"{API}/pos/identify", headers=elsewhere.headers, json={"code": code}
        ).status_code
        == 200
    )
    assert client.get(url, headers=elsewhere.headers).status_code == 200

    staff = staff_headers(session, clock, "members")
    full = client.get(url, headers=staff).get_json()
    assert full["email"] == "ann@example.com"
    assert full["cards"][0]["qr_payload"] == code


def test_qr_images_are_for_staff_with_the_members_scope(
    client: FlaskClient, session: Session, clock: FixedClock, keys: Any
):
    till = make_till(session, clock)
    joined = client.post(f"{API}/members", headers=till.headers, json={"name": "Bo"}).get_json()
    number = joined["cards"][0]["number"]
    assert joined["cards"][0]["qr_payload"], "the till that enrols her shows her new card's QR"

    assert client.get(f"{API}/cards/{number}/qr.svg", headers=till.headers).status_code == 401
    staff = staff_headers(session, clock, "members")
    assert client.get(f"{API}/cards/{number}/qr.svg", headers=staff).status_code == 200


def test_a_till_cannot_block_the_card_of_a_member_it_has_not_identified(
    client: FlaskClient, session: Session, clock: FixedClock, keys: Any
):
    elsewhere = make_till(session, clock)
    _member, card = make_member(session, keys, clock)

    refused = client.post(
        f"{API}/cards/{card.number}/block", headers=elsewhere.headers, json={"reason": "lost"}
    )
    client.post(f"{API}/pos/identify", headers=elsewhere.headers, json={"code": qr_of(card, keys)})
    blocked = client.post(
        f"{API}/cards/{card.number}/block", headers=elsewhere.headers, json={"reason": "lost"}
    )

    assert refused.status_code == 404
    assert blocked.status_code == 200
