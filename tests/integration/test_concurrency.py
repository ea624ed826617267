"""Racing tills on PostgreSQL: real threads, real connections, committed transactions.

These go through the whole stack (Flask app, Flask-SQLAlchemy sessions, the pool) because the
promise is about what tills see, and because a race can hide in any layer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.app import create_app
from api.extensions import db
from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.members.services import LookupKeys
from loyalty.program import get_program
from loyalty.sales.models import Sale
from tests.conftest import START, app_settings, unique
from tests.factories import make_member, make_till, qr_of

THREADS = 32


@pytest.fixture
def live_app(postgres_only: None, database_url: str) -> Iterator[Flask]:
    flask_app = create_app(app_settings(database_url), clock=FixedClock(START))
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


def _race(app: Flask, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Start every call at the same instant, each on its own thread with its own client."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[Any], Any]) -> Any:
        client = app.test_client()
        barrier.wait()
        return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _committed(engine: Engine, build: Callable[[Session], Any]) -> Any:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return build(session)


def test_racing_redemptions_never_spend_more_than_the_balance(
    live_app: Flask, engine: Engine, keys: LookupKeys
):
    clock = FixedClock(START)

    def setup(session: Session) -> Any:
        till = make_till(session, clock, store_code=unique("RACE"))
        member, card = make_member(session, keys, clock)
        ledger.credit(session, program=get_program(session), member_id=member.id, points=1_000,
                      kind=EntryKind.BONUS, reason="race", actor="test", now=clock.now())
        return till, member, qr_of(card, keys)

    till, member, code = _committed(engine, setup)
    # Each sale is paid in full with 100 points, so it earns nothing back during the race.
    def redeem(n: int) -> Callable[[Any], Any]:
        return lambda client: client.post(
            "/api/v1/pos/transactions", headers=till.headers,
            json={"external_id": f"race-{n}", "occurred_at": START.isoformat(), "code": code,
                  "redeem_points": 100,
                  "lines": [{"sku": "GUM", "quantity": 1, "unit_price": 100}]},
        )

    responses = _race(live_app, [redeem(n) for n in range(THREADS)])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: THREADS - 10}, statuses
    refused = [r.get_json() for r in responses if r.status_code == 409]
    assert all(body["type"].endswith("insufficient-points") for body in refused)

    with Session(engine) as session:
        assert ledger.balance(session, member.id).available == 0
        spent = session.scalar(select(func.sum(PointEntry.points)).where(
            PointEntry.member_id == member.id, PointEntry.kind == EntryKind.REDEEM))
        assert spent == -100 * statuses[201]
        assert session.scalar(select(func.count()).select_from(Sale).where(
            Sale.member_id == member.id)) == statuses[201]
        assert ledger.check_ledger(session) == []


def test_a_sale_replayed_by_racing_tills_is_recorded_once(
    live_app: Flask, engine: Engine, keys: LookupKeys
):
    clock = FixedClock(START)
    till, member, code = _committed(engine, lambda s: (
        lambda t, mc: (t, mc[0], qr_of(mc[1], keys)))(make_till(s, clock, unique("REPLAY")),
                                                       make_member(s, keys, clock)))
    body = {"external_id": "offline-0001", "occurred_at": START.isoformat(), "code": code,
            "lines": [{"sku": "COFFEE", "quantity": 2, "unit_price": 899}]}
    responses = _race(live_app, [
        lambda client: client.post("/api/v1/pos/transactions", headers=till.headers, json=body)
    ] * 16)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, statuses
    assert len({r.get_data() for r in responses}) == 1, "every replay answers the first result"
    with Session(engine) as session:
        assert ledger.balance(session, member.id).available == 17
        assert session.scalar(select(func.count()).select_from(Sale).where(
            Sale.store_id == till.store.id)) == 1


def test_racing_returns_of_one_sale_never_return_more_than_was_sold(
    live_app: Flask, engine: Engine, keys: LookupKeys
):
    clock = FixedClock(START)
    till, member, code = _committed(engine, lambda s: (
        lambda t, mc: (t, mc[0], qr_of(mc[1], keys)))(make_till(s, clock, unique("RET")),
                                                       make_member(s, keys, clock)))
    client = live_app.test_client()
    sale = client.post("/api/v1/pos/transactions", headers=till.headers, json={
        "external_id": "big-sale", "occurred_at": START.isoformat(), "code": code,
        "lines": [{"sku": "WINE", "quantity": 3, "unit_price": 1500}]})
    assert sale.status_code == 201
    responses = _race(live_app, [
        (lambda n: lambda c: c.post("/api/v1/pos/transactions/big-sale/returns",
                                    headers=till.headers,
                                    json={"external_id": f"ret-{n}",
                                          "lines": [{"sku": "WINE", "quantity": 1}]}))(n)
        for n in range(8)
    ])
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 3, statuses
    assert statuses[201] + statuses[409] + statuses[422] == 8
    with Session(engine) as session:
        assert ledger.balance(session, member.id).available == 0
        assert ledger.check_ledger(session) == []
