"""Health, program settings, the OpenAPI document, rate limits and the migrations."""

from __future__ import annotations

import redis
from flask import Flask

import loyalty.models  # noqa: F401 - the full metadata
from tests.conftest import app_settings
from tests.factories import make_till


def test_health_reports_the_database_and_that_redis_is_not_configured(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "not configured"}


def test_health_reports_a_reachable_redis(database_url, redis_url, own_app):
    flask_app = own_app(app_settings(database_url, redis_url))
    response = flask_app.test_client().get("/health")
    assert response.get_json()["redis"] == "ok"


def test_without_redis_an_instance_is_degraded_but_still_ready_for_tills(database_url, own_app):
    flask_app = own_app(app_settings(database_url, "redis://127.0.0.1:1/0"))
    client = flask_app.test_client()
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200, "a load balancer keeps the instance"
        assert response.get_json() == {
            "status": "degraded",
            "database": "ok",
            "redis": "unreachable",
        }
    assert client.get("/health/live").get_json() == {"status": "ok"}


def test_the_program_settings_have_designs_defaults(client, session, clock):
    till = make_till(session, clock)
    program = client.get("/api/v1/program", headers=till.headers).get_json()
    assert program["earn_points"] == 1
    assert program["earn_per_minor"] == 100
    assert (program["redeem_points"], program["redeem_value_minor"]) == (100, 100)
    assert (program["expiry_policy"], program["expiry_months"]) == (
        "months_after_earning_month",
        12,
    )
    assert program["pending_days"] == 0


def test_the_openapi_document_describes_the_till_contract(client):
    spec = client.get("/api/openapi.json").get_json()
    for path in [
        "/api/v1/pos/identify",
        "/api/v1/pos/quote",
        "/api/v1/pos/transactions",
        "/api/v1/pos/transactions/{external_id}/returns",
        "/api/v1/pos/transactions/{external_id}/void",
        "/api/v1/members",
        "/api/v1/members/{member_id}",
        "/api/v1/members/{member_id}/ledger",
    ]:
        assert path in spec["paths"], path
    sale = spec["paths"]["/api/v1/pos/transactions"]["post"]
    assert {"200", "201", "422"} <= set(sale["responses"])
    assert spec["components"]["securitySchemes"]["terminalKey"]["scheme"] == "bearer"


def test_the_docs_page_loads_its_assets_from_the_project(client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in page
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    with client.get("/api/docs/static/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200


def _hammer_unknown_cards(flask_app: Flask, headers: dict[str, str], times: int) -> list[int]:
    client = flask_app.test_client()
    return [
        client.post(
            "/api/v1/pos/identify", headers=headers, json={"code": "9000000000000001"}
        ).status_code
        for _ in range(times)
    ]


def test_guessing_card_numbers_is_rate_limited_per_terminal(app, client, session, clock):
    till = make_till(session, clock)
    statuses = _hammer_unknown_cards(app, till.headers, 35)
    assert statuses[:30] == [404] * 30
    assert statuses[30:] == [429] * 5
    limited = client.post("/api/v1/pos/identify", headers=till.headers, json={"code": "x"})
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    other = make_till(session, clock)
    assert _hammer_unknown_cards(app, other.headers, 1) == [404], "limits are per terminal"


def test_successful_lookups_do_not_count_towards_the_limit(app, client, session, clock, keys):
    from tests.factories import make_member, qr_of  # noqa: PLC0415

    till = make_till(session, clock)
    _member, card = make_member(session, keys, clock)
    for _ in range(40):
        response = client.post(
            "/api/v1/pos/identify", headers=till.headers, json={"code": qr_of(card, keys)}
        )
        assert response.status_code == 200


def test_the_rate_limit_is_shared_through_redis(
    database_url, redis_url, app, session, clock, own_app
):
    redis.Redis.from_url(redis_url).flushdb()
    till = make_till(session, clock)
    settings = app_settings(database_url, redis_url, LOYALTY_IDENTIFY_FAILURES_PER_MINUTE=3)
    # A second app stands for another gunicorn worker. Building it gives the limiter a new
    # storage object, so counts kept in memory would start again from zero: only counts kept in
    # Redis carry over.
    first = own_app(settings)
    assert _hammer_unknown_cards(first, till.headers, 2) == [404, 404]
    second = own_app(settings)
    assert _hammer_unknown_cards(second, till.headers, 2) == [404, 429]
    assert redis.Redis.from_url(redis_url).dbsize() > 0
