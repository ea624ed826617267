"""Racing tills on PostgreSQL: real threads, real connections, committed transactions.

These go through the whole stack (Flask app, Flask-SQLAlchemy sessions, the pool) because the
promise is about what tills see, and because a race can hide in any layer.
"""

from __future__ import annotations

from collections import Counter

from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.sales.models import Sale
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import staff_headers
from tests.races import Post, committed_till_and_member, race

THREADS = 32


def _sale(external_id: str, code: str, *lines: tuple[str, int, int], redeem: int = 0) -> dict:
    return {
        "external_id": external_id,
        "occurred_at": START.isoformat(),
        "code": code,
        "redeem_points": redeem,
        "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
    }


def test_racing_redemptions_never_spend_more_than_the_balance(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, member, code = committed_till_and_member(race_engine, keys, points=1_000)
    # Each sale is paid in full with 100 points, so it earns nothing back during the race.
    posts = [
        Post(
            "/api/v1/pos/transactions",
            _sale(f"race-{n}", code, ("GUM", 1, 100), redeem=100),
            till.headers,
        )
        for n in range(THREADS)
    ]
    responses = race(live_app, posts)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: THREADS - 10}, statuses
    refused = [r.get_json() for r in responses if r.status_code == 409]
    assert all(body["type"].endswith("insufficient-points") for body in refused)

    with Session(race_engine) as session:
        assert ledger.balance(session, member.id).available == 0
        spent = session.scalar(
            select(func.sum(PointEntry.points)).where(
                PointEntry.member_id == member.id, PointEntry.kind == EntryKind.REDEEM
            )
        )
        assert spent == -100 * statuses[201]
        sales = select(func.count()).select_from(Sale).where(Sale.member_id == member.id)
        assert session.scalar(sales) == statuses[201]
        assert ledger.check_ledger(session) == []


def test_a_sale_replayed_by_racing_tills_is_recorded_once(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, member, code = committed_till_and_member(race_engine, keys)
    body = _sale("offline-0001", code, ("COFFEE", 2, 899))
    responses = race(live_app, [Post("/api/v1/pos/transactions", body, till.headers)] * 16)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, statuses
    assert len({r.get_data() for r in responses}) == 1, "every replay answers the first result"
    with Session(race_engine) as session:
        assert ledger.balance(session, member.id).available == 17
        sales = select(func.count()).select_from(Sale).where(Sale.store_id == till.store.id)
        assert session.scalar(sales) == 1


def test_racing_returns_of_one_sale_never_return_more_than_was_sold(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, member, code = committed_till_and_member(race_engine, keys)
    sale = live_app.test_client().post(
        "/api/v1/pos/transactions",
        headers=till.headers,
        json=_sale("big-sale", code, ("WINE", 3, 1500)),
    )
    assert sale.status_code == 201
    posts = [
        Post(
            "/api/v1/pos/transactions/big-sale/returns",
            {"external_id": f"ret-{n}", "lines": [{"sku": "WINE", "quantity": 1}]},
            till.headers,
        )
        for n in range(8)
    ]
    statuses = Counter(r.status_code for r in race(live_app, posts))
    assert statuses[201] == 3, statuses
    assert statuses[201] + statuses[409] + statuses[422] == 8
    with Session(race_engine) as session:
        assert ledger.balance(session, member.id).available == 0
        assert ledger.check_ledger(session) == []


def test_an_adjustment_retried_by_racing_requests_is_made_once(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    _till, member, _code = committed_till_and_member(race_engine, keys)
    with Session(race_engine, expire_on_commit=False) as session, session.begin():
        headers = staff_headers(session, FixedClock(START), "points")
    post = Post(
        f"/api/v1/members/{member.id}/adjustments",
        {"points": 25, "reason": "goodwill"},
        headers | {"Idempotency-Key": "retry-storm"},
    )
    responses = race(live_app, [post] * 16)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, statuses
    assert len({r.get_data() for r in responses}) == 1, "every replay answers the first result"
    with Session(race_engine) as session:
        assert ledger.balance(session, member.id).available == 25
        assert ledger.check_ledger(session) == []
