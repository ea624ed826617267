"""Staff keys and their scopes; program settings changed by staff."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from loyalty.audit.models import AuditEntry
from loyalty.staff.models import StaffKey
from loyalty.staff.services import revoke_staff_key
from tests.factories import make_till, staff_headers


def test_staff_with_the_program_scope_change_settings_and_it_is_audited(client, session, clock):
    headers = staff_headers(session, clock, "program")
    response = client.patch(
        "/api/v1/program", headers=headers, json={"earn_points": 2, "timezone": "Europe/London"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["earn_points"] == 2
    assert response.get_json()["timezone"] == "Europe/London"
    audit = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "program.update")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert audit.actor.startswith("staff:")
    assert audit.details["after"] == {"earn_points": 2, "timezone": "Europe/London"}


def test_a_key_without_the_scope_is_403_and_changes_nothing(client, session, clock):
    headers = staff_headers(session, clock, "rules")
    response = client.patch("/api/v1/program", headers=headers, json={"earn_points": 9})
    assert response.status_code == 403
    assert "program scope" in response.get_json()["detail"]
    till = make_till(session, clock)
    assert client.get("/api/v1/program", headers=till.headers).get_json()["earn_points"] == 1


def test_a_terminal_key_cannot_do_staff_work(client, session, clock):
    till = make_till(session, clock)
    response = client.patch("/api/v1/program", headers=till.headers, json={"earn_points": 9})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_staff_key_cannot_work_a_till(client, session, clock):
    headers = staff_headers(session, clock, "program", "rules")
    response = client.post("/api/v1/pos/identify", headers=headers, json={"code": "x"})
    assert response.status_code == 401


def test_a_revoked_staff_key_stops_at_once(client, session, clock):
    headers = staff_headers(session, clock, "program")
    key_id = session.scalars(select(StaffKey.id).order_by(StaffKey.id.desc())).first()
    revoke_staff_key(session, key_id=key_id, actor="test", now=clock.now())
    session.flush()
    assert (
        client.patch("/api/v1/program", headers=headers, json={"earn_points": 3}).status_code == 401
    )


def test_staff_and_tills_both_read_the_program(client, session, clock):
    assert (
        client.get("/api/v1/program", headers=staff_headers(session, clock, "reports")).status_code
        == 200
    )
    assert client.get("/api/v1/program").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"earn_points": 0}, "earn_points"),
        ({"earn_points": "2"}, "earn_points"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"expiry_policy": "sometimes"}, "expiry_policy"),
        ({"tier_basis": "vibes"}, "tier_basis"),
        ({"currency": "USD"}, "currency"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(client, session, clock, body, field):
    headers = staff_headers(session, clock, "program")
    response = client.patch("/api/v1/program", headers=headers, json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_the_key_is_shown_once_and_stored_hashed(session, clock):
    headers = staff_headers(session, clock, "reports")
    secret = headers["Authorization"].rsplit("_", 1)[1]
    stored = session.scalars(select(StaffKey).order_by(StaffKey.id.desc())).first()
    assert secret not in stored.key_hash
    assert stored.scopes == ["reports"]
