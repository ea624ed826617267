"""Bad input at the till API: always a 4xx problem+json that says what is wrong (naming the
field, nested like `lines.0.quantity`), never a 500, and never a half-written change."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card
from loyalty.cards.numbers import luhn_check_digit
from loyalty.clock import FixedClock
from loyalty.ledger.models import PointAccount, PointEntry
from loyalty.members.models import Member
from loyalty.rules.pricing import BasketLine
from loyalty.sales.models import Sale, SaleLine, SaleReturn
from loyalty.settings import LookupKeys
from tests.conftest import app_settings
from tests.factories import Till, make_member, make_till, qr_of, sale_body, sell

API = "/api/v1"
SOLD = "SOLD-1"  # the sale every shop has recorded already: 2 MILK, 1 BREAD, for its member


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # a field left out of the body


@dataclass
class Shop:
    till: Till
    member_id: int
    qr: str


@pytest.fixture
def shop(session: Session, clock: FixedClock, keys: LookupKeys) -> Shop:
    till = make_till(session, clock)
    member, card = make_member(session, keys, clock)
    sell(
        session,
        till,
        keys,
        clock,
        member=member,
        external_id=SOLD,
        lines=[BasketLine("MILK", 2, 125, "dairy"), BasketLine("BREAD", 1, 250, "bakery")],
    )
    return Shop(till=till, member_id=member.id, qr=qr_of(card, keys))


# The five calls that take a body, each with a body it accepts, a field an empty body lacks and
# a place in the body where a number goes.
ENDPOINTS = ["identify", "quote", "transactions", "returns", "members"]
PATHS = {
    "identify": f"{API}/pos/identify",
    "quote": f"{API}/pos/quote",
    "transactions": f"{API}/pos/transactions",
    "returns": f"{API}/pos/transactions/{SOLD}/returns",
    "members": f"{API}/members",
}
REQUIRED = {
    "identify": "code",
    "quote": "lines",
    "transactions": "external_id",
    "returns": "lines",
    "members": "name",
}
NUMBER_SLOT = {
    "identify": "code",
    "quote": "lines.0.quantity",
    "transactions": "lines.0.unit_price",
    "returns": "lines.0.quantity",
    "members": "birthday",
}


def valid_body(endpoint: str, shop: Shop, clock: FixedClock) -> dict[str, Any]:
    sale = sale_body("NEW-1", shop.qr, clock.now())
    bodies: dict[str, dict[str, Any]] = {
        "identify": {"code": shop.qr},
        "quote": {k: v for k, v in sale.items() if k not in {"external_id", "occurred_at"}},
        "transactions": sale,
        "returns": {"external_id": "RET-1", "lines": [{"sku": "MILK", "quantity": 1}]},
        "members": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "consents": {"email": False, "sms": False},
        },
    }
    return bodies[endpoint]


def changed(body: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the value at a dotted path (`lines.0.quantity`) replaced or, for
    MISSING, left out."""
    body = copy.deepcopy(body)
    *parents, last = where.split(".")
    target: Any = body
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    key: Any = int(last) if isinstance(target, list) else last
    if value is MISSING:
        del target[key]
    else:
        target[key] = value
    return body


def post(client: FlaskClient, shop: Shop, endpoint: str, body: Any) -> TestResponse:
    return client.post(PATHS[endpoint], json=body, headers=shop.till.headers)


def post_raw(
    client: FlaskClient,
    shop: Shop,
    endpoint: str,
    data: bytes,
    content_type: str | None = "application/json",
) -> TestResponse:
    headers = dict(shop.till.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(PATHS[endpoint], data=data, headers=headers)


def assert_problem(
    response: TestResponse, status: int | None = None, field: str | None = None, at: str = ""
) -> dict[str, Any]:
    """A 4xx problem+json with type, title, status and detail; naming `field` when given."""
    text = f"{at} {response.get_data(as_text=True)}"
    assert 400 <= response.status_code < 500, text
    if status is not None:
        assert response.status_code == status, text
    assert response.mimetype == "application/problem+json", text
    problem = response.get_json()
    assert {"type", "title", "status", "detail"} <= problem.keys(), problem
    assert problem["status"] == response.status_code
    assert problem["title"]
    assert problem["detail"]
    if field is not None:
        assert field in problem.get("errors", {}), text
        messages = problem["errors"][field]
        assert messages
        assert all(isinstance(m, str) and m for m in messages)
    return problem


def recorded(session: Session) -> dict[str, Any]:
    """What the database holds that a request could have written."""
    session.expire_all()

    def count(model: type) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    def rows(*columns: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in session.execute(select(*columns).order_by(*columns))]

    return {
        "sales": rows(Sale.store_id, Sale.external_id, Sale.status, Sale.points_reversed),
        "sale lines": rows(SaleLine.sale_id, SaleLine.sku, SaleLine.returned_quantity),
        "returns": count(SaleReturn),
        "members": count(Member),
        "cards": count(Card),
        "point entries": count(PointEntry),
        "balances": rows(PointAccount.member_id, PointAccount.available, PointAccount.pending),
        "audit entries": count(AuditEntry),
    }


def test_the_valid_bodies_that_the_tables_below_spoil_are_accepted(
    client: FlaskClient, shop: Shop, clock: FixedClock
) -> None:
    for endpoint in ENDPOINTS:
        response = post(client, shop, endpoint, valid_body(endpoint, shop, clock))
        assert response.status_code in {200, 201}, (endpoint, response.get_json())


# A basket goes to both /pos/quote and /pos/transactions.
BASKET_CASES = [
    # where in the body, the value put there, the field the answer names
    pytest.param("lines.0.quantity", -1, "lines.0.quantity", id="negative quantity"),
    pytest.param("lines.0.quantity", 0, "lines.0.quantity", id="zero quantity"),
    pytest.param("lines.0.quantity", "5", "lines.0.quantity", id="quantity as a string"),
    pytest.param("lines.0.quantity", 5.5, "lines.0.quantity", id="fractional quantity"),
    pytest.param("lines.0.quantity", 5.0, "lines.0.quantity", id="quantity as a float"),
    pytest.param("lines.0.quantity", True, "lines.0.quantity", id="quantity true"),
    pytest.param("lines.0.quantity", None, "lines.0.quantity", id="quantity null"),
    pytest.param("lines.0.quantity", [2], "lines.0.quantity", id="quantity a list"),
    pytest.param("lines.0.quantity", MISSING, "lines.0.quantity", id="quantity missing"),
    pytest.param("lines.0.quantity", 10**6, "lines.0.quantity", id="a million of one item"),
    pytest.param("lines.0.quantity", 10**30, "lines.0.quantity", id="quantity 10**30"),
    pytest.param("lines.0.unit_price", -1, "lines.0.unit_price", id="negative price"),
    pytest.param("lines.0.unit_price", "125", "lines.0.unit_price", id="price as a string"),
    pytest.param("lines.0.unit_price", 1.25, "lines.0.unit_price", id="price in units"),
    pytest.param("lines.0.unit_price", False, "lines.0.unit_price", id="price false"),
    pytest.param("lines.0.unit_price", None, "lines.0.unit_price", id="price null"),
    pytest.param("lines.0.unit_price", MISSING, "lines.0.unit_price", id="price missing"),
    pytest.param("lines.0.unit_price", 10**18, "lines.0.unit_price", id="price 10**18"),
    pytest.param("lines.0.unit_price", 10**30, "lines.0.unit_price", id="price 10**30"),
    pytest.param("lines.0.unit_price", -(10**30), "lines.0.unit_price", id="price -10**30"),
    pytest.param("lines.0.sku", MISSING, "lines.0.sku", id="sku missing"),
    pytest.param("lines.0.sku", None, "lines.0.sku", id="sku null"),
    pytest.param("lines.0.sku", "", "lines.0.sku", id="sku empty"),
    pytest.param("lines.0.sku", 42, "lines.0.sku", id="sku a number"),
    pytest.param("lines.0.sku", "S" * 65, "lines.0.sku", id="sku too long"),
    pytest.param("lines.0.sku", "MI\x00LK", "lines.0.sku", id="sku with a NUL"),
    pytest.param("lines.0.sku", "MILK\ud800", "lines.0.sku", id="sku with a lone surrogate"),
    pytest.param("lines.0.category", 7, "lines.0.category", id="category a number"),
    pytest.param("lines.0.category", "c" * 65, "lines.0.category", id="category too long"),
    pytest.param("lines.0.colour", "red", "lines.0.colour", id="unknown field in a line"),
    pytest.param("lines.1", 5, "lines.1", id="a line that is a number"),
    pytest.param("lines.1", None, "lines.1", id="a line that is null"),
    pytest.param("lines", [], "lines", id="no lines"),
    pytest.param("lines", None, "lines", id="lines null"),
    pytest.param("lines", MISSING, "lines", id="lines missing"),
    pytest.param("lines", {"sku": "MILK"}, "lines", id="lines an object"),
    pytest.param(
        "lines",
        [{"sku": f"SKU-{n}", "quantity": 1, "unit_price": 1} for n in range(501)],
        "lines",
        id="501 lines",
    ),
    pytest.param("code", 42, "code", id="code a number"),
    pytest.param("code", "", "code", id="code empty"),
    pytest.param("code", "9" * 255, "code", id="code too long"),
    pytest.param("code", "ada\x00@example.com", "code", id="code with a NUL"),
    pytest.param("member_id", "1", "member_id", id="member id as a string"),
    pytest.param("member_id", 0, "member_id", id="member id zero"),
    pytest.param("member_id", 1.5, "member_id", id="member id fractional"),
    pytest.param("member_id", 10**30, "member_id", id="member id 10**30"),
    pytest.param("member_id", 2**63, "member_id", id="member id past bigint"),
    pytest.param("coupon_codes", "SPRING", "coupon_codes", id="coupon codes a string"),
    pytest.param("coupon_codes", [5], "coupon_codes.0", id="coupon code a number"),
    pytest.param("coupon_codes", ["A", ""], "coupon_codes.1", id="coupon code empty"),
    pytest.param("coupon_codes", ["C"] * 21, "coupon_codes", id="21 coupon codes"),
    pytest.param("redeem_points", -100, "redeem_points", id="negative points"),
    pytest.param("redeem_points", "100", "redeem_points", id="points as a string"),
    pytest.param("redeem_points", 150.5, "redeem_points", id="fractional points"),
    pytest.param("redeem_points", True, "redeem_points", id="points true"),
    pytest.param("redeem_points", None, "redeem_points", id="points null"),
    pytest.param("redeem_points", 10**30, "redeem_points", id="points 10**30"),
    pytest.param("redeem_points", 10**9, "redeem_points", id="points worth more than basket"),
    pytest.param("discount", 100, "discount", id="unknown field"),
]


@pytest.mark.parametrize(("where", "value", "named"), BASKET_CASES)
def test_a_basket_with_a_wrong_field_is_refused_naming_the_field_and_nothing_is_recorded(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    where: str,
    value: Any,
    named: str,
) -> None:
    before = recorded(session)
    for endpoint in ("quote", "transactions"):
        body = changed(valid_body(endpoint, shop, clock), where, value)
        assert_problem(post(client, shop, endpoint, body), 422, named, at=endpoint)
    assert recorded(session) == before


def test_points_cannot_be_redeemed_without_a_member_and_nothing_is_recorded(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    before = recorded(session)
    body = sale_body("ANON-1", None, clock.now(), redeem_points=100)
    assert_problem(post(client, shop, "transactions", body), 422, "code")
    assert recorded(session) == before


def test_redeeming_points_the_member_does_not_have_is_refused_and_no_sale_is_recorded(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    # The member earned 5 points on SOLD-1; 500 (worth 5.00) is more than they have.
    before = recorded(session)
    quote = valid_body("quote", shop, clock) | {"redeem_points": 500}
    assert_problem(post(client, shop, "quote", quote), 422, "redeem_points")
    sale = valid_body("transactions", shop, clock) | {"redeem_points": 500}
    assert_problem(post(client, shop, "transactions", sale), 409, "redeem_points")
    assert recorded(session) == before
    balance = client.get(f"{API}/members/{shop.member_id}", headers=shop.till.headers)
    assert balance.get_json()["balance"] == {"available": 5, "pending": 0}


SALE_CASES = [
    pytest.param("external_id", MISSING, "external_id", id="external id missing"),
    pytest.param("external_id", None, "external_id", id="external id null"),
    pytest.param("external_id", "", "external_id", id="external id empty"),
    pytest.param("external_id", 1234, "external_id", id="external id a number"),
    pytest.param("external_id", "till 7 sale 9", "external_id", id="external id with spaces"),
    pytest.param("external_id", "vente-nº1", "external_id", id="external id not ascii"),
    pytest.param("external_id", "x" * 65, "external_id", id="external id too long"),
    pytest.param("occurred_at", MISSING, "occurred_at", id="date missing"),
    pytest.param("occurred_at", None, "occurred_at", id="date null"),
    pytest.param("occurred_at", "yesterday", "occurred_at", id="date in words"),
    pytest.param("occurred_at", "2026-03-14T10:00:00", "occurred_at", id="date without zone"),
    pytest.param("occurred_at", 1773482400, "occurred_at", id="date as a unix time"),
    pytest.param("occurred_at", "2026-02-30T10:00:00+00:00", "occurred_at", id="30 february"),
    pytest.param("occurred_at", "1970-01-01T00:00:00+00:00", "occurred_at", id="date in 1970"),
    pytest.param(
        "occurred_at", "0001-01-01T00:00:00+14:00", "occurred_at", id="date before year 1 in utc"
    ),
    pytest.param(
        "occurred_at", "9999-12-31T23:59:59-14:00", "occurred_at", id="date after 9999 in utc"
    ),
    pytest.param("occurred_at", "2026-03-21T10:00:00+00:00", "occurred_at", id="date next week"),
]


@pytest.mark.parametrize(("where", "value", "named"), SALE_CASES)
def test_a_sale_with_a_wrong_id_or_date_is_refused_naming_the_field_and_nothing_is_recorded(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    where: str,
    value: Any,
    named: str,
) -> None:
    before = recorded(session)
    body = changed(valid_body("transactions", shop, clock), where, value)
    assert_problem(post(client, shop, "transactions", body), 422, named)
    assert recorded(session) == before


RETURN_CASES = [
    pytest.param("lines.0.quantity", -1, "lines.0.quantity", id="negative quantity"),
    pytest.param("lines.0.quantity", 0, "lines.0.quantity", id="zero quantity"),
    pytest.param("lines.0.quantity", "1", "lines.0.quantity", id="quantity as a string"),
    pytest.param("lines.0.quantity", 0.5, "lines.0.quantity", id="half a bottle"),
    pytest.param("lines.0.quantity", True, "lines.0.quantity", id="quantity true"),
    pytest.param("lines.0.quantity", None, "lines.0.quantity", id="quantity null"),
    pytest.param("lines.0.quantity", 10**30, "lines.0.quantity", id="quantity 10**30"),
    pytest.param("lines.0.sku", MISSING, "lines.0.sku", id="sku missing"),
    pytest.param("lines.0.sku", None, "lines.0.sku", id="sku null"),
    pytest.param("lines.0.sku", "", "lines.0.sku", id="sku empty"),
    pytest.param("lines.0.sku", "M\x00", "lines.0.sku", id="sku with a NUL"),
    pytest.param("lines.0.unit_price", 125, "lines.0.unit_price", id="a price in a return"),
    pytest.param("lines", [], "lines", id="no lines"),
    pytest.param("lines", None, "lines", id="lines null"),
    pytest.param("lines", MISSING, "lines", id="lines missing"),
    pytest.param("lines", ["MILK"], "lines.0", id="a line that is a string"),
    pytest.param("lines", [{"sku": "MILK", "quantity": 1}] * 501, "lines", id="501 lines"),
    pytest.param("external_id", MISSING, "external_id", id="external id missing"),
    pytest.param("external_id", None, "external_id", id="external id null"),
    pytest.param("external_id", "return 1", "external_id", id="external id with a space"),
    pytest.param("external_id", "r" * 65, "external_id", id="external id too long"),
    pytest.param("reason", "broken", "reason", id="unknown field"),
    # Well formed, but not what the sale holds.
    pytest.param("lines.0.sku", "CAVIAR", "lines", id="a sku the sale does not hold"),
    pytest.param("lines.0.quantity", 3, "lines", id="more than was sold"),
    pytest.param(
        "lines",
        [{"sku": "BREAD", "quantity": 1}, {"sku": "CAVIAR", "quantity": 1}],
        "lines",
        id="one good line and one bad",
    ),
]


@pytest.mark.parametrize(("where", "value", "named"), RETURN_CASES)
def test_a_return_with_a_wrong_field_is_refused_naming_the_field_and_the_sale_is_unchanged(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    where: str,
    value: Any,
    named: str,
) -> None:
    before = recorded(session)
    body = changed(valid_body("returns", shop, clock), where, value)
    assert_problem(post(client, shop, "returns", body), 422, named)
    assert recorded(session) == before


def test_a_return_of_more_than_is_left_after_an_earlier_return_is_refused(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    first = {"external_id": "RET-1", "lines": [{"sku": "MILK", "quantity": 1}]}
    assert post(client, shop, "returns", first).status_code == 201
    before = recorded(session)
    second = {"external_id": "RET-2", "lines": [{"sku": "MILK", "quantity": 2}]}
    problem = assert_problem(post(client, shop, "returns", second), 422, "lines")
    assert "MILK" in problem["detail"]
    assert recorded(session) == before


def test_a_return_for_a_sale_this_store_never_made_is_a_404(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    before = recorded(session)
    response = client.post(
        f"{API}/pos/transactions/NO-SUCH-SALE/returns",
        json=valid_body("returns", shop, clock),
        headers=shop.till.headers,
    )
    assert_problem(response, 404)
    assert recorded(session) == before


@pytest.mark.parametrize("sale_id", ["x" * 300, "%C3%A9t%C3%A9", "a%20b"])
def test_a_return_or_void_for_an_odd_sale_id_in_the_path_is_a_404(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop, sale_id: str
) -> None:
    before = recorded(session)
    path = f"{API}/pos/transactions/{sale_id}"
    body = valid_body("returns", shop, clock)
    assert_problem(client.post(f"{path}/returns", json=body, headers=shop.till.headers), 404)
    assert_problem(client.post(f"{path}/void", headers=shop.till.headers), 404)
    assert recorded(session) == before


def test_a_sale_id_with_a_nul_in_the_path_is_a_404(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    before = recorded(session)
    path = f"{API}/pos/transactions/a%00b"
    body = valid_body("returns", shop, clock)
    assert_problem(client.post(f"{path}/returns", json=body, headers=shop.till.headers), 404)
    assert_problem(client.post(f"{path}/void", headers=shop.till.headers), 404)
    assert recorded(session) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/members/99999999999999999999", id="member"),
        pytest.param("GET", "/members/99999999999999999999/ledger", id="ledger"),
        pytest.param("GET", "/cards/9%00", id="card"),
        pytest.param("POST", "/cards/9%00/block", id="card block"),
    ],
)
def test_an_absurd_member_id_or_card_number_in_the_path_is_a_404(
    client: FlaskClient, session: Session, shop: Shop, method: str, path: str
) -> None:
    before = recorded(session)
    body = {"reason": "lost"} if method == "POST" else None
    response = client.open(f"{API}{path}", method=method, json=body, headers=shop.till.headers)
    assert_problem(response, 404)
    assert recorded(session) == before


ENROL_CASES = [
    pytest.param("name", MISSING, "name", id="name missing"),
    pytest.param("name", None, "name", id="name null"),
    pytest.param("name", "", "name", id="name empty"),
    pytest.param("name", "   ", "name", id="name blank"),
    pytest.param("name", 42, "name", id="name a number"),
    pytest.param("name", "A" * 201, "name", id="name too long"),
    pytest.param("name", "Ada\x00", "name", id="name with a NUL"),
    pytest.param("name", "Ada\x1b[31m", "name", id="name with an escape sequence"),
    pytest.param("email", 42, "email", id="email a number"),
    pytest.param("email", "not an email", "email", id="email without an at"),
    pytest.param("email", "a" * 250 + "@x.io", "email", id="email too long"),
    pytest.param("phone", 447700900123, "phone", id="phone a number"),
    pytest.param("phone", "call me maybe", "phone", id="phone in words"),
    pytest.param("phone", "+44 1", "phone", id="phone too short"),
    pytest.param("phone", "+" + "4" * 40, "phone", id="phone too long"),
    pytest.param("birthday", "1990-13-01", "birthday", id="birthday month 13"),
    pytest.param("birthday", "14/03/1990", "birthday", id="birthday day first"),
    pytest.param("birthday", 19900314, "birthday", id="birthday a number"),
    pytest.param("birthday", "2030-01-01", "birthday", id="birthday in the future"),
    pytest.param("consents.email", "yes", "consents.email", id="consent yes"),
    pytest.param("consents.email", 1, "consents.email", id="consent 1"),
    pytest.param("consents.email", None, "consents.email", id="consent null"),
    pytest.param("consents", True, "consents", id="consents not an object"),
    pytest.param("consents.post", True, "consents.post", id="consent to an unknown channel"),
    pytest.param("consents.sms", True, "consents.sms", id="sms consent without a phone"),
    pytest.param("email_consent", True, "email_consent", id="the old consent field"),
    pytest.param("acquisition_source", "s" * 81, "acquisition_source", id="source too long"),
    pytest.param("card_code", 1234, "card_code", id="card code a number"),
    pytest.param("card_code", "c" * 65, "card_code", id="card code too long"),
    pytest.param("points", 1000, "points", id="unknown field"),
]


@pytest.mark.parametrize(("where", "value", "named"), ENROL_CASES)
def test_an_enrolment_with_a_wrong_field_is_refused_naming_the_field_and_enrols_nobody(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    where: str,
    value: Any,
    named: str,
) -> None:
    before = recorded(session)
    body = changed(valid_body("members", shop, clock), where, value)
    assert_problem(post(client, shop, "members", body), 422, named)
    assert recorded(session) == before


@pytest.mark.parametrize("card_code", ["1234 5678 9012 3456", "L1" + "0" * 32])
def test_a_mistyped_or_forged_card_code_at_enrolment_is_refused_naming_card_code(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop, card_code: str
) -> None:
    before = recorded(session)
    body = valid_body("members", shop, clock) | {"card_code": card_code}
    response = post(client, shop, "members", body)
    assert recorded(session) == before
    assert_problem(response, 422, "card_code")


def _card_number(body: str) -> str:
    return body + luhn_check_digit(body)


UNISSUED = _card_number("912345678901234")
MISTYPED = UNISSUED[:-1] + str((int(UNISSUED[-1]) + 1) % 10)


IDENTIFY_CASES = [
    pytest.param({}, 422, "code", id="code missing"),
    pytest.param({"code": None}, 422, "code", id="code null"),
    pytest.param({"code": ""}, 422, "code", id="code empty"),
    pytest.param({"code": "   "}, 422, "code", id="code blank"),
    pytest.param({"code": 9123456789012345}, 422, "code", id="code a number"),
    pytest.param({"code": True}, 422, "code", id="code true"),
    pytest.param({"code": ["L1"]}, 422, "code", id="code a list"),
    pytest.param({"code": "9" * 255}, 422, "code", id="code too long"),
    pytest.param({"code": "L1\x00"}, 422, "code", id="code with a NUL"),
    pytest.param({"code": "ada@example.com\x00"}, 422, "code", id="email with a NUL"),
    pytest.param({"code": "x", "store": "S1"}, 422, "store", id="unknown field"),
    pytest.param({"code": "L1" + "9" * 16 + "A" * 16}, 422, "code", id="forged QR payload"),
    pytest.param({"code": MISTYPED}, 422, "code", id="a mistyped card number"),
    pytest.param({"code": UNISSUED}, 404, "code", id="a card never issued"),
    pytest.param({"code": "nobody@example.com"}, 404, "code", id="unknown email"),
    pytest.param({"code": "+44 20 7946 0999"}, 404, "code", id="unknown phone"),
    pytest.param(
        {"code": "+44 7700 900999"},
        422,
        "code",
        id="an invalid phone number",
    ),
    pytest.param(
        {"code": "ada@localhost"},
        422,
        "code",
        id="an invalid email address",
    ),
]


@pytest.mark.parametrize(("body", "status", "named"), IDENTIFY_CASES)
def test_identifying_with_a_wrong_code_is_refused_naming_code(
    client: FlaskClient,
    session: Session,
    shop: Shop,
    body: dict[str, Any],
    status: int | None,
    named: str,
) -> None:
    before = recorded(session)
    assert_problem(post(client, shop, "identify", body), status, named)
    assert recorded(session) == before


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("".join(chr(ord(c) + 0xFF10 - ord("0")) for c in UNISSUED), id="fullwidth"),
        pytest.param("\u0661" * 16, id="arabic-indic"),
    ],
)
def test_a_card_number_in_digits_other_than_ascii_is_refused(
    client: FlaskClient, session: Session, shop: Shop, code: str
) -> None:
    before = recorded(session)
    assert_problem(post(client, shop, "identify", {"code": code}), field="code")
    assert recorded(session) == before


def test_superscript_digits_are_refused_as_a_mistyped_card_number(
    client: FlaskClient, session: Session, shop: Shop
) -> None:
    assert_problem(post(client, shop, "identify", {"code": "\u00b2" * 16}), 422, "code")


# Bodies that are not a JSON object, whatever the call.
NOT_AN_OBJECT = [
    pytest.param(b"{", 400, "_body", id="an unclosed brace"),
    pytest.param(b'{"code": "L1"', 400, "_body", id="a truncated body"),
    pytest.param(b"{'code': 'L1'}", 400, "_body", id="single quotes"),
    pytest.param(b'{"code": "L1",}', 400, "_body", id="a trailing comma"),
    pytest.param(b'{"code": "L1"} {"code": "L2"}', 400, "_body", id="two objects"),
    pytest.param(b'{"code": "\xff\xfe"}', 400, "_body", id="not utf-8"),
    pytest.param(b"[" * 20_000 + b"]" * 20_000, 400, "_body", id="nested 20000 deep"),
    pytest.param(b"null", 422, "_body", id="null"),
    pytest.param(b"[]", 422, "_body", id="an empty list"),
    pytest.param(b'[{"code": "L1"}]', 422, "_body", id="a list of objects"),
    pytest.param(b'"L1"', 422, "_body", id="a string"),
    pytest.param(b"42", 422, "_body", id="a number"),
    pytest.param(b"true", 422, "_body", id="true"),
]


@pytest.mark.parametrize(("data", "status", "named"), NOT_AN_OBJECT)
def test_a_body_that_is_not_a_json_object_is_refused_by_every_call_and_nothing_is_recorded(
    client: FlaskClient, session: Session, shop: Shop, data: bytes, status: int, named: str
) -> None:
    before = recorded(session)
    for endpoint in ENDPOINTS:
        assert_problem(post_raw(client, shop, endpoint, data), status, named, at=endpoint)
    assert recorded(session) == before


@pytest.mark.parametrize(
    ("literal", "status"),
    [
        pytest.param("NaN", 400, id="NaN"),
        pytest.param("Infinity", 400, id="Infinity"),
        pytest.param("-Infinity", 400, id="-Infinity"),
        pytest.param("9" * 5000, 400, id="a 5000-digit number"),
        pytest.param("-" + "1" * 4301, 400, id="a 4301-digit negative number"),
        # JSON, read as an infinite float: the schema refuses it and names the field.
        pytest.param("1e999999", 422, id="1e999999"),
    ],
)
def test_nan_infinity_and_numbers_too_long_to_read_are_refused_and_nothing_is_recorded(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    literal: str,
    status: int,
) -> None:
    before = recorded(session)
    for endpoint in ENDPOINTS:
        slot = NUMBER_SLOT[endpoint]
        text = json.dumps(changed(valid_body(endpoint, shop, clock), slot, "@@"))
        data = text.replace('"@@"', literal).encode()
        named = slot if status == 422 else "_body"
        assert_problem(post_raw(client, shop, endpoint, data), status, named, at=endpoint)
    assert recorded(session) == before


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_is_refused_naming_a_field_that_is_needed(
    client: FlaskClient, session: Session, shop: Shop, content_type: str | None
) -> None:
    before = recorded(session)
    for endpoint in ENDPOINTS:
        response = post_raw(client, shop, endpoint, b"", content_type)
        assert_problem(response, 422, REQUIRED[endpoint], at=endpoint)
    assert recorded(session) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None],
)
def test_a_json_body_sent_as_another_content_type_is_refused_saying_to_send_json(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    content_type: str | None,
) -> None:
    before = recorded(session)
    for endpoint in ENDPOINTS:
        data = json.dumps(valid_body(endpoint, shop, clock)).encode()
        response = post_raw(client, shop, endpoint, data, content_type)
        problem = assert_problem(response, 422, at=endpoint)
        assert "application/json" in problem["detail"], endpoint
    assert recorded(session) == before


def test_a_body_over_64_kib_is_refused_with_413_and_nothing_is_recorded(
    client: FlaskClient, session: Session, clock: FixedClock, shop: Shop
) -> None:
    before = recorded(session)
    for endpoint in ENDPOINTS:
        # A body the call would accept, padded with JSON whitespace past the limit.
        data = json.dumps(valid_body(endpoint, shop, clock)).encode() + b" " * (64 * 1024)
        assert_problem(post_raw(client, shop, endpoint, data), 413, at=endpoint)
    # ... and a 501-line sale that is over the limit by its own weight.
    lines = [{"sku": "S" * 64, "category": "C" * 64, "quantity": 1, "unit_price": 1}] * 501
    body = valid_body("transactions", shop, clock) | {"lines": lines}
    assert_problem(post(client, shop, "transactions", body), 413)
    assert recorded(session) == before


def test_the_body_limit_follows_loyalty_max_body_bytes(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    shop: Shop,
    database_url: str,
    own_app: Callable[..., Flask],
) -> None:
    body = valid_body("transactions", shop, clock)
    data = json.dumps(body).encode()
    padded = data + b" " * (3000 - len(data))
    headers = shop.till.headers | {"Content-Type": "application/json"}
    assert client.post(PATHS["transactions"], data=padded, headers=headers).status_code == 201

    small = own_app(
        app_settings(database_url, LOYALTY_MAX_BODY_BYTES=2048),
        clock=clock,
        config_override={"TESTING": True},
    )
    before = recorded(session)
    again = json.dumps(body | {"external_id": "NEW-2"}).encode()
    padded = again + b" " * (3000 - len(again))
    response = small.test_client().post(PATHS["transactions"], data=padded, headers=headers)
    assert_problem(response, 413)
    assert recorded(session) == before


# Arbitrary JSON thrown at the sale call: some of it shaped like a sale, most of it not.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70)
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - the zone comes from `timezones`
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))]),
).map(datetime.isoformat)
_LINES = st.fixed_dictionaries(
    {},
    optional={
        "sku": st.text(max_size=70) | _JSON,
        "category": st.text(max_size=70) | _JSON,
        "quantity": st.integers(min_value=-5, max_value=20_000) | _JSON,
        "unit_price": st.integers(min_value=-5, max_value=10**12) | _JSON,
    },
)
_SALES = st.fixed_dictionaries(
    {},
    optional={
        "external_id": st.text(max_size=70) | _JSON,
        "occurred_at": _MOMENTS | _JSON,
        "lines": st.lists(_LINES | _JSON, max_size=4) | _JSON,
        "code": st.text(max_size=40) | _JSON,
        "member_id": st.integers(min_value=-5, max_value=2**64) | _JSON,
        "coupon_codes": st.lists(st.text(max_size=8), max_size=3) | _JSON,
        "redeem_points": st.integers(min_value=-5, max_value=10**10) | _JSON,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_SALES | _JSON)
def test_arbitrary_json_sent_as_a_sale_is_never_a_server_error(
    client: FlaskClient, session: Session, shop: Shop, body: Any
) -> None:
    before = recorded(session)
    response = post(client, shop, "transactions", body)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert_problem(response)
        assert recorded(session) == before
