"""The till page: scan a member, ring up a basket, commit the sale, void it; refusals a
cashier reads, a guesser who waits, a forger of requests and a cashier of another store who
get nothing."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.coupons.offers import create_offer
from loyalty.coupons.services import create_shared_coupon
from loyalty.ledger.services import balance_as_of
from loyalty.sales.models import Sale, SaleStatus
from loyalty.settings import LookupKeys
from loyalty.staff.models import StaffRole
from loyalty.stores.models import Store, Terminal
from server.core.limits import FailureBudget
from tests.factories import give_points, make_member, make_till, qr_of
from tests.web.test_till_sign_in import csrf_token, make_account, sign_in, text_of


def _cashier(client: FlaskClient, session: Session, clock: FixedClock, store: Store) -> None:
    username = make_account(session, clock, StaffRole.CASHIER, store.id)
    assert sign_in(client, username).status_code == 302


@pytest.fixture
def store(session: Session, clock: FixedClock) -> Store:
    return make_till(session, clock).store


@pytest.fixture
def till(client: FlaskClient, session: Session, clock: FixedClock, store: Store) -> FlaskClient:
    _cashier(client, session, clock, store)
    return client


def post(client: FlaskClient, path: str, **data: object):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/till/")})


def test_scanning_a_qr_shows_the_member_and_their_points(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    member, card = make_member(session, keys, clock, name="Alice Scanner")
    give_points(session, member.id, 120, clock.now())

    answer = post(till, "/till/scan", code=qr_of(card, keys))
    assert answer.status_code == 303
    page = text_of(till.get("/till/"))
    assert "Alice Scanner" in page
    assert re.search(r'till-points-available">\s*120<', page)


def test_an_unknown_card_is_told_and_many_wait(
    app: Flask, till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    shared = app.extensions["loyalty.shared"]
    app.extensions["loyalty.failure_budget"] = FailureBudget(shared, per_minute=3)
    unknown = post(till, "/till/scan", code="0000000000000000")
    assert unknown.status_code in {404, 422}
    assert "till-error" in text_of(unknown)

    answers = [post(till, "/till/scan", code=f"nobody{n}@example.com") for n in range(3)]
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "Too many failed look-ups" in text_of(answers[-1])


def test_a_blocked_member_is_refused_with_the_domain_s_message(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    from loyalty.members.models import Member, MemberStatus  # noqa: PLC0415

    member, card = make_member(session, keys, clock)
    session.get_one(Member, member.id).status = MemberStatus.BLOCKED
    session.flush()
    answer = post(till, "/till/scan", code=qr_of(card, keys))
    assert answer.status_code == 409
    assert "Member blocked" in text_of(answer)
    assert "refer them to customer service" in text_of(answer)


def _ring_up(till: FlaskClient, session: Session, clock: FixedClock, code: str) -> None:
    offer = create_offer(
        session,
        {"name": "Ten off", "kind": "amount_off", "value": 1000},
        actor="t",
        now=clock.now(),
    )
    create_shared_coupon(session, offer.id, "TENOFF", actor="t", now=clock.now())
    session.flush()
    assert post(till, "/till/scan", code=code).status_code == 303
    assert post(till, "/till/lines", sku="TEA", quantity=2, unit_price=1500).status_code == 303
    assert post(till, "/till/lines", sku="CAKE", quantity=1, unit_price=3000).status_code == 303
    assert post(till, "/till/coupons", coupon_code="TENOFF").status_code == 303


def test_a_basket_with_a_coupon_shows_the_discount_by_line_and_the_points(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    _member, card = make_member(session, keys, clock)
    _ring_up(till, session, clock, qr_of(card, keys))

    page = text_of(till.get("/till/"))
    assert page.count("Coupon TENOFF") == 2  # its discount spread over both lines
    assert "applied: \u2212€10.00" in page  # a minus sign
    assert "€60.00" in page  # subtotal
    assert "€50.00" in page  # total
    earned = re.search(r'till-points-earn">\s*(\d+)<', page)
    assert earned is not None
    assert int(earned.group(1)) > 0


def test_an_unknown_coupon_is_told_and_not_kept(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    assert post(till, "/till/lines", sku="TEA", quantity=1, unit_price=500).status_code == 303
    answer = post(till, "/till/coupons", coupon_code="NOSUCHCODE")
    assert answer.status_code == 404
    assert "Unknown coupon" in text_of(answer)
    assert "NOSUCHCODE" not in text_of(till.get("/till/"))


def test_a_committed_sale_shows_its_receipt_and_a_void_gives_the_points_back(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock, store: Store
):
    member, card = make_member(session, keys, clock)
    _ring_up(till, session, clock, qr_of(card, keys))

    receipt = post(till, "/till/sale")
    assert receipt.status_code == 200
    page = text_of(receipt)
    sale = session.scalars(select(Sale).where(Sale.member_id == member.id)).one()
    assert sale.external_id.startswith("web-")
    assert sale.external_id in page
    assert sale.store_id == store.id
    terminal = session.get_one(Terminal, sale.terminal_id)
    assert (terminal.name, terminal.store_id) == ("Web till", store.id)
    assert terminal.revoked_at is not None  # its key opens nothing
    assert sale.points_earned > 0
    assert re.search(rf'till-points-earned">\s*{sale.points_earned}<', page)
    balance = balance_as_of(session, member.id, clock.now())
    assert f"{balance.available} available, {balance.pending} pending" in page
    assert "The basket is empty." in page
    assert sale.discount_total == 1000
    assert "Discounts" in page

    voided = post(till, "/till/void", receipt=sale.external_id)
    assert voided.status_code == 200
    assert re.search(rf'till-points-reversed">\s*{sale.points_earned}<', text_of(voided))
    session.refresh(sale)
    assert sale.status == SaleStatus.VOIDED
    after = balance_as_of(session, member.id, clock.now())
    assert after.available + after.pending == 0


def test_a_post_without_the_csrf_token_is_refused(
    till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    _member, card = make_member(session, keys, clock)
    answer = till.post("/till/scan", data={"code": qr_of(card, keys)})
    assert answer.status_code == 400
    assert (
        till.post("/till/lines", data={"sku": "A", "quantity": 1, "unit_price": 1}).status_code
        == 400
    )
    assert "The basket is empty." in text_of(till.get("/till/"))


def test_a_cashier_of_another_store_cannot_void_the_sale(
    app: Flask, till: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    _member, card = make_member(session, keys, clock)
    assert post(till, "/till/scan", code=qr_of(card, keys)).status_code == 303
    assert post(till, "/till/lines", sku="TEA", quantity=1, unit_price=900).status_code == 303
    assert post(till, "/till/sale").status_code == 200
    sale = session.scalars(select(Sale).where(Sale.member_id == _member.id)).one()

    other = app.test_client()
    _cashier(other, session, clock, make_till(session, clock).store)
    answer = post(other, "/till/void", receipt=sale.external_id)
    assert answer.status_code == 404
    assert "Unknown sale" in text_of(answer)
    session.refresh(sale)
    assert sale.status == SaleStatus.COMPLETED


def test_the_till_needs_a_signed_in_cashier(client: FlaskClient):
    assert client.get("/till/").status_code == 302
    token = csrf_token(client)
    answer = client.post("/till/sale", data={"csrf_token": token})
    assert answer.status_code == 302
    assert "/till/sign-in" in answer.headers["Location"]
