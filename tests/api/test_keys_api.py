"""Keys, as an operator looks after them: a till's key rotated with a grace period the operator
sets (the old key keeps working until then, not after), a till revoked at once, staff keys
listed without their secrets; every change audited, and all of it needs the `keys` scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from tests.factories import make_till, staff_headers

API = "/api/v1"


def _works(client: FlaskClient, key: str) -> bool:
    answer = client.get(f"{API}/tiers", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code in {200, 401}, answer.get_json()
    return answer.status_code == 200


def test_a_rotated_till_key_works_beside_the_new_one_for_the_grace_period_then_stops(
    client: FlaskClient, session: Session, clock: FixedClock
):
    till = make_till(session, clock)
    staff = staff_headers(session, clock, "keys")

    rotated = client.post(
        f"{API}/terminals/{till.terminal.id}/rotate",
        headers=staff,
        json={"grace_minutes": 60},
    )

    assert rotated.status_code == 200, rotated.get_json()
    body = rotated.get_json()
    new_key = body["key"]
    assert new_key.startswith("lt_")
    assert new_key != till.key
    assert (
        body["terminal"]["previous_key_valid_until"]
        == (clock.now() + timedelta(minutes=60)).isoformat()
    )
    assert _works(client, new_key)
    assert _works(client, till.key)
    clock.advance(timedelta(minutes=61))
    assert _works(client, new_key)
    assert not _works(client, till.key), "the grace period is over"
    listed = client.get(f"{API}/terminals", headers=staff).get_json()["terminals"]
    assert new_key not in str(listed), "a key is shown once, when it is made"


def test_a_rotation_without_grace_stops_the_old_key_at_once(
    client: FlaskClient, session: Session, clock: FixedClock
):
    till = make_till(session, clock)
    staff = staff_headers(session, clock, "keys")
    new_key = client.post(
        f"{API}/terminals/{till.terminal.id}/rotate", headers=staff, json={}
    ).get_json()["key"]
    assert _works(client, new_key)
    assert not _works(client, till.key)


def test_a_revoked_till_stops_at_once_with_its_grace_key_and_it_is_audited(
    client: FlaskClient, session: Session, clock: FixedClock
):
    till = make_till(session, clock)
    staff = staff_headers(session, clock, "keys")
    new_key = client.post(
        f"{API}/terminals/{till.terminal.id}/rotate", headers=staff, json={"grace_minutes": 600}
    ).get_json()["key"]

    revoked = client.post(f"{API}/terminals/{till.terminal.id}/revoke", headers=staff)

    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["revoked_at"] == clock.now().isoformat()
    assert not _works(client, new_key)
    assert not _works(client, till.key)
    actions = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.subject_type == "terminal",
            AuditEntry.subject_id == str(till.terminal.id),
        )
    ).all()
    assert {"terminal.rotate_key", "terminal.revoke"} <= set(actions)
    assert client.post(f"{API}/terminals/999999/revoke", headers=staff).status_code == 404


def test_grace_is_between_none_and_a_week(client: FlaskClient, session: Session, clock: FixedClock):
    till = make_till(session, clock)
    staff = staff_headers(session, clock, "keys")
    for grace in (-1, 7 * 24 * 60 + 1, "an hour"):
        refused = client.post(
            f"{API}/terminals/{till.terminal.id}/rotate",
            headers=staff,
            json={"grace_minutes": grace},
        )
        assert refused.status_code == 422, grace
        assert "grace_minutes" in refused.get_json()["errors"]
    assert _works(client, till.key), "a refused rotation changes nothing"


def test_staff_keys_are_listed_with_scopes_and_never_their_secrets(
    client: FlaskClient, session: Session, clock: FixedClock
):
    staff = staff_headers(session, clock, "keys")
    other = staff_headers(session, clock, "members", "rules")

    listed = client.get(f"{API}/staff-keys", headers=staff)

    assert listed.status_code == 200
    keys: list[dict[str, Any]] = listed.get_json()["staff_keys"]
    assert sorted(k["scopes"] for k in keys) == [["keys"], ["members", "rules"]]
    assert all(k["revoked_at"] is None for k in keys)
    text = listed.get_data(as_text=True)
    for headers in (staff, other):
        secret = headers["Authorization"].removeprefix("Bearer ")
        assert secret not in text
        assert secret.rsplit("_", 1)[1] not in text
    assert "key_hash" not in text


def test_keys_are_managed_only_with_the_keys_scope(
    client: FlaskClient, session: Session, clock: FixedClock
):
    till = make_till(session, clock)
    members_only = staff_headers(session, clock, "members")
    calls = [
        ("GET", f"{API}/terminals"),
        ("GET", f"{API}/staff-keys"),
        ("POST", f"{API}/terminals/{till.terminal.id}/rotate"),
        ("POST", f"{API}/terminals/{till.terminal.id}/revoke"),
    ]
    for method, url in calls:
        assert client.open(url, method=method, headers=members_only, json={}).status_code == 403
        assert client.open(url, method=method, headers=till.headers, json={}).status_code == 401
    assert _works(client, till.key)
