"""Tiers over HTTP: defined by staff (`tiers` scope), seen by the till at identify and sale,
floors given by staff, and the progress the member page shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.members.models import Member
from loyalty.settings import LookupKeys
from tests.factories import Till, make_member, make_till, qr_of, sale_body, staff_headers

TIERS = "/api/v1/tiers"
SILVER = {"code": "SILVER", "name": "Silver", "rank": 1, "threshold": 1500}
GOLD = {
    "code": "GOLD",
    "name": "Gold",
    "rank": 2,
    "threshold": 5000,
    "earn_multiplier_percent": 150,
    "perks": "free delivery",
}
SALE = 1778  # what sale_body's basket costs: 17.78


@pytest.fixture
def staff(session: Session, clock: FixedClock) -> dict[str, str]:
    return staff_headers(session, clock, "tiers", "members")


@pytest.fixture
def tiers(client: FlaskClient, staff: dict[str, str]) -> None:
    for tier in (SILVER, GOLD):
        assert client.post(TIERS, headers=staff, json=tier).status_code == 201


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


@pytest.fixture
def member(session: Session, keys: LookupKeys, clock: FixedClock) -> tuple[Member, str]:
    found, card = make_member(session, keys, clock)
    return found, qr_of(card, keys)


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


def _identify(client: FlaskClient, till: Till, code: str) -> dict[str, Any] | None:
    response = client.post("/api/v1/pos/identify", headers=till.headers, json={"code": code})
    assert response.status_code == 200, response.get_json()
    tier: dict[str, Any] | None = response.get_json()["tier"]
    return tier


def _sell(
    client: FlaskClient, till: Till, code: str, external_id: str, when: datetime
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body(external_id, code, when)
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _progress(client: FlaskClient, headers: dict[str, str], member_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/members/{member_id}/tier-progress", headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_staff_create_list_and_change_tiers_and_each_change_is_audited(
    client, session, staff, till
):
    created = [client.post(TIERS, headers=staff, json=tier) for tier in (GOLD, SILVER)]
    changed = client.patch(
        f"{TIERS}/GOLD", headers=staff, json={"threshold": 4000, "name": "Gold Club"}
    )

    assert [response.status_code for response in created] == [201, 201]
    assert created[0].get_json() == GOLD
    assert created[1].get_json() == SILVER | {"earn_multiplier_percent": 100, "perks": ""}
    assert changed.status_code == 200
    assert changed.get_json() == GOLD | {"threshold": 4000, "name": "Gold Club"}
    for headers in (staff, till.headers):  # the console and the tills both read them
        listed = client.get(TIERS, headers=headers)
        assert [t["code"] for t in listed.get_json()] == ["SILVER", "GOLD"]  # by rank
    assert [(e.actor[:6], e.details["code"]) for e in _audit(session, "tier.create")] == [
        ("staff:", "GOLD"),
        ("staff:", "SILVER"),
    ]
    (update,) = _audit(session, "tier.update")
    assert update.actor.startswith("staff:")
    assert update.details == {
        "before": {"threshold": 5000, "name": "Gold"},
        "after": {"threshold": 4000, "name": "Gold Club"},
    }


@pytest.mark.parametrize(
    ("tier", "field"),
    [
        (SILVER | {"name": "Silver again", "rank": 7}, "code"),
        ({"code": "BRONZE", "name": "Bronze", "rank": 1, "threshold": 100}, "rank"),
    ],
)
def test_a_code_or_rank_already_taken_is_409_and_nothing_changes(
    client, session, staff, tiers, tier, field
):
    response = client.post(TIERS, headers=staff, json=tier)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert [t["code"] for t in client.get(TIERS, headers=staff).get_json()] == ["SILVER", "GOLD"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", TIERS, SILVER | {"code": "NO SPACES"}, "code"),
        ("post", TIERS, SILVER | {"earn_multiplier_percent": 50}, "earn_multiplier_percent"),
        ("post", TIERS, SILVER | {"threshold": -1}, "threshold"),
        ("post", TIERS, {"code": "X", "name": "X", "rank": 3}, "threshold"),
        ("patch", f"{TIERS}/GOLD", {"rank": 9}, "rank"),  # ranks do not change
        ("patch", f"{TIERS}/GOLD", {"threshold": "lots"}, "threshold"),
    ],
)
def test_bad_tier_fields_are_422_with_the_field_named(
    client, staff, tiers, method, path, body, field
):
    response = getattr(client, method)(path, headers=staff, json=body)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_tier_changes_need_the_tiers_scope_and_a_staff_key(client, session, clock, till, member):
    other = staff_headers(session, clock, "rules", "points")
    calls = [
        ("post", TIERS, SILVER),
        ("patch", f"{TIERS}/SILVER", {"name": "x"}),
        ("put", f"/api/v1/members/{member[0].id}/tier-floor", {"tier": "SILVER"}),
    ]
    for method, path, body in calls:
        forbidden = getattr(client, method)(path, headers=other, json=body)
        terminal = getattr(client, method)(path, headers=till.headers, json=body)
        assert forbidden.status_code == 403, path
        assert "tiers scope" in forbidden.get_json()["detail"]
        assert terminal.status_code == 401, path
    assert client.get(TIERS).status_code == 401
    assert client.get(TIERS, headers=other).get_json() == []


def test_an_unknown_tier_is_404(client, staff):
    response = client.patch(f"{TIERS}/PLATINUM", headers=staff, json={"name": "x"})

    assert response.status_code == 404
    assert response.get_json()["errors"] == {"tier": ["no tier has code 'PLATINUM'"]}


def test_identify_and_the_sale_show_the_tier_and_the_sale_that_crosses_says_so(
    client, tiers, till, member, clock
):
    _member, code = member
    assert _identify(client, till, code) is None

    crossing = _sell(client, till, code, "t-1", clock.now())
    next_sale = _sell(client, till, code, "t-2", clock.now())
    tier = _identify(client, till, code)

    silver = {
        "code": "SILVER",
        "name": "Silver",
        "rank": 1,
        "threshold": 1500,
        "earn_multiplier_percent": 100,
        "perks": "",
    }
    assert (crossing["tier"], crossing["tier_changed"]) == (silver, True)
    assert (next_sale["tier"], next_sale["tier_changed"]) == (silver, False)
    assert tier == silver
    third = _sell(client, till, code, "t-3", clock.now())  # 3 x 17.78 = 53.34: Gold is 50.00
    assert (third["tier"]["code"], third["tier_changed"]) == ("GOLD", True)
    assert _identify(client, till, code)["code"] == "GOLD"


def test_a_floor_raises_the_members_tier_until_the_date_and_is_audited(
    client, session, staff, tiers, till, member, clock
):
    found, code = member
    _sell(client, till, code, "f-1", clock.now())  # Silver earned
    until = clock.now() + timedelta(days=30)

    response = client.put(
        f"/api/v1/members/{found.id}/tier-floor",
        headers=staff,
        json={"tier": "GOLD", "until": until.isoformat()},
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["tier"]["code"] == "GOLD"
    assert _identify(client, till, code)["code"] == "GOLD"
    with_floor = _sell(client, till, code, "f-2", clock.now())
    assert (with_floor["tier"]["code"], with_floor["tier_changed"]) == ("GOLD", False)
    assert _progress(client, staff, found.id)["tier"]["code"] == "GOLD"
    (entry,) = _audit(session, "tier.floor")
    assert entry.actor.startswith("staff:")
    assert entry.subject_id == str(found.id)
    assert (entry.details["tier"], entry.details["until"]) == ("GOLD", until.isoformat())

    clock.advance(timedelta(days=30))
    assert _identify(client, till, code)["code"] == "SILVER"  # the floor is over


@pytest.mark.parametrize(
    ("path_id", "body", "status", "field"),
    [
        (None, {"tier": "GOLD", "until": "2026-03-01T00:00:00+00:00"}, 422, "until"),
        (None, {"tier": "GOLD", "until": "2026-05-01"}, 422, "until"),
        (None, {"tier": "PLATINUM"}, 404, "tier"),
        (None, {}, 422, "tier"),
        (999_999, {"tier": "GOLD"}, 404, "member_id"),
    ],
)
def test_a_floor_in_the_past_of_an_unknown_tier_or_member_is_refused(
    client, session, staff, tiers, member, path_id, body, status, field
):
    found, _code = member
    response = client.put(
        f"/api/v1/members/{path_id or found.id}/tier-floor", headers=staff, json=body
    )

    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["errors"]
    assert _audit(session, "tier.floor") == []


def test_staff_can_end_a_floor_at_once_and_the_member_keeps_the_tier_they_earned(
    client, session, staff, tiers, till, member, clock
):
    found, code = member
    _sell(client, till, code, "u-1", clock.now())  # Silver earned
    floor = f"/api/v1/members/{found.id}/tier-floor"
    client.put(floor, headers=staff, json={"tier": "GOLD"})  # no end date
    assert _identify(client, till, code)["code"] == "GOLD"

    removed = client.delete(floor, headers=staff)
    again = client.delete(floor, headers=staff)

    assert (removed.status_code, again.status_code) == (200, 200)
    assert removed.get_json()["tier"]["code"] == again.get_json()["tier"]["code"] == "SILVER"
    assert _identify(client, till, code)["code"] == "SILVER"
    (entry,) = _audit(session, "tier.floor_remove")  # the second removal changed nothing
    assert entry.actor.startswith("staff:")
    assert entry.details["before"] == ["GOLD", None]
    assert client.delete(floor, headers=till.headers).status_code == 401
    assert client.delete("/api/v1/members/999999/tier-floor", headers=staff).status_code == 404


def test_progress_names_the_next_tier_and_what_it_needs_for_a_till_and_for_staff(
    client, session, clock, tiers, till, member
):
    found, code = member
    _sell(client, till, code, "p-1", clock.now())
    members = staff_headers(session, clock, "members")  # member data: the members scope
    reports = staff_headers(session, clock, "reports")
    assert (
        client.get(f"/api/v1/members/{found.id}/tier-progress", headers=reports).status_code == 403
    )

    for headers in (till.headers, members):
        progress = _progress(client, headers, found.id)
        assert progress["tier"]["code"] == "SILVER"
        assert progress["next_tier"]["code"] == "GOLD"
        assert (progress["basis"], progress["qualifying"], progress["needed"]) == (
            "spend",
            SALE,
            5000 - SALE,
        )
        assert progress["window_starts"] == "2025-03-14T10:00:00+00:00"
        assert progress["counts_until"] == "2027-03-14T10:00:00+00:00"
    assert client.get(f"/api/v1/members/{found.id}/tier-progress").status_code == 401
    unknown = client.get("/api/v1/members/999999/tier-progress", headers=till.headers)
    assert unknown.status_code == 404


def test_progress_at_the_top_tier_has_nothing_more_to_need(client, tiers, till, member, clock):
    found, code = member
    for n in range(3):
        _sell(client, till, code, f"top-{n}", clock.now())

    progress = _progress(client, till.headers, found.id)

    assert progress["tier"]["code"] == "GOLD"
    assert (progress["next_tier"], progress["needed"]) == (None, None)


def test_a_purchase_leaves_the_window_once_and_does_not_come_back_at_the_month_end(
    client, tiers, till, member, clock
):
    found, code = member
    _sell(client, till, code, "old-28", datetime(2025, 3, 28, 12, 0, tzinfo=UTC))
    assert _progress(client, till.headers, found.id)["counts_until"] == (
        "2026-03-28T12:00:00+00:00"
    )

    clock.advance(datetime(2026, 3, 28, 13, 0, tzinfo=UTC) - clock.now())
    left = _progress(client, till.headers, found.id)
    clock.advance(timedelta(hours=12))  # the 29th
    still_out = _progress(client, till.headers, found.id)

    assert (left["qualifying"], left["counts_until"]) == (0, None)
    assert (still_out["qualifying"], still_out["counts_until"]) == (0, None)


def test_a_purchase_on_the_30th_counts_until_the_first_of_the_month_a_window_later(
    client, tiers, till, member, clock
):
    found, code = member
    _sell(client, till, code, "old-30", datetime(2025, 3, 30, 12, 0, tzinfo=UTC))
    assert _progress(client, till.headers, found.id)["counts_until"] == (
        "2026-04-01T00:00:00+00:00"
    )

    clock.advance(datetime(2026, 3, 31, 23, 0, tzinfo=UTC) - clock.now())
    last_hour = _progress(client, till.headers, found.id)
    clock.advance(timedelta(hours=1))
    next_month = _progress(client, till.headers, found.id)

    assert last_hour["qualifying"] == SALE
    assert next_month["qualifying"] == 0


def test_the_openapi_document_lists_the_tier_paths(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]

    assert {"get", "post"} <= set(paths["/api/v1/tiers"])
    assert "patch" in paths["/api/v1/tiers/{code}"]
    assert "put" in paths["/api/v1/members/{member_id}/tier-floor"]
    assert "get" in paths["/api/v1/members/{member_id}/tier-progress"]
