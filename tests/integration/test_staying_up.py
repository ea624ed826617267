"""Staying up when PostgreSQL or Redis falter, against a cluster and a Redis server of the
test's own (tests/private_services.py) that it restarts, stops and freezes: a till is served
or told to retry (503 with Retry-After), never a 500 and never left hanging, and the health
checks answer whatever the database does. bench/faults.py does the same under a load of
sales and counts the answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.clock import SystemClock
from loyalty.db import make_engine
from loyalty.program import ensure_program
from server.core.extensions import db
from tests.conftest import app_settings, unavailable
from tests.factories import Till, make_member, make_till, qr_of
from tests.private_services import PrivatePostgres, PrivateRedis, postgres_bin

pytestmark = pytest.mark.slow


@dataclass
class Shop:
    pg: PrivatePostgres
    till: Till
    qr: str


@pytest.fixture(scope="module")
def shop(keys_for_module: Any) -> Iterator[Shop]:
    if postgres_bin() is None:
        unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    with PrivatePostgres() as pg:
        migrate.upgrade(pg.url)
        engine = make_engine(pg.url)
        clock = SystemClock()
        with Session(engine, expire_on_commit=False) as session, session.begin():
            ensure_program(session, clock.now())
            till = make_till(session, clock)  # type: ignore[arg-type]
            _member, card = make_member(
                session,
                keys_for_module,
                clock,  # type: ignore[arg-type]
                store_id=till.terminal.store_id,
            )
            qr = qr_of(card, keys_for_module)
        engine.dispose()
        yield Shop(pg, till, qr)


@pytest.fixture(scope="module")
def keys_for_module() -> Any:
    return app_settings("sqlite://").lookup_keys


def _identify(client: FlaskClient, shop: Shop) -> Any:
    return client.post("/api/v1/pos/identify", headers=shop.till.headers, json={"code": shop.qr})


def _tell_to_retry(answer: Any) -> None:
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0


@pytest.fixture
def served(shop: Shop, own_app: Callable[..., Flask]) -> Callable[..., FlaskClient]:
    def serve(**settings: object) -> FlaskClient:
        app = own_app(app_settings(shop.pg.url, **settings))
        return app.test_client()

    return serve


def _warm(client: FlaskClient, shop: Shop, pooled: int = 3) -> None:
    """A few connections in the pool, as a busy worker has."""
    app = client.application
    with app.app_context():
        connections = [db.engine.connect() for _ in range(pooled)]
        for connection in connections:
            connection.close()
    assert _identify(client, shop).status_code == 200


def test_after_postgresql_restarts_the_next_requests_are_served(shop: Shop, served: Any) -> None:
    client = served()
    _warm(client, shop)

    shop.pg.restart()

    statuses = [_identify(client, shop).status_code for _ in range(5)]
    assert statuses == [200] * 5, "a pooled connection the restart closed is replaced, not used"


def test_with_postgresql_down_a_till_is_told_to_retry_and_served_once_it_is_back(
    shop: Shop, served: Any
) -> None:
    client = served()
    _warm(client, shop)

    shop.pg.stop()
    try:
        refused = _identify(client, shop)
        health = client.get("/health/ready")
        live = client.get("/health/live")
    finally:
        shop.pg.start()

    _tell_to_retry(refused)
    assert health.status_code == 503
    assert health.get_json()["database"] in {"unreachable", "not answering"}
    assert live.status_code == 200, "the process itself is fine: no restart needed"
    assert _identify(client, shop).status_code == 200


def test_with_postgresql_frozen_a_till_call_gives_up_with_503_and_health_still_answers(
    shop: Shop, served: Any
) -> None:
    client = served(LOYALTY_DB_STATEMENT_TIMEOUT=1, LOYALTY_DB_CONNECT_TIMEOUT=2)
    _warm(client, shop, pooled=1)

    shop.pg.freeze()
    try:
        stuck = _identify(client, shop)
        health = client.get("/health")
    finally:
        shop.pg.thaw()

    _tell_to_retry(stuck)
    assert health.status_code == 503
    assert health.get_json()["database"] == "not answering"
    assert _identify(client, shop).status_code == 200


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_with_redis_stopped_or_frozen_tills_keep_working_and_guessing_stays_limited(
    shop: Shop, served: Any, fault: str
) -> None:
    with PrivateRedis() as redis:
        client = served(LOYALTY_REDIS_URL=redis.url)
        assert client.get("/health").get_json()["redis"] == "ok"
        (redis.stop if fault == "stopped" else redis.freeze)()

        identified = [_identify(client, shop).status_code for _ in range(3)]
        health = client.get("/health")
        guesses = [
            client.post(
                "/api/v1/pos/identify",
                headers=shop.till.headers,
                json={"code": f"+44 20 7946 {n:04d}"},
            ).status_code
            for n in range(32)
        ]

    assert identified == [200] * 3
    assert health.status_code == 200
    assert health.get_json()["status"] == "degraded"
    assert guesses[-2:] == [429, 429], "the budget is kept in the process meanwhile"
