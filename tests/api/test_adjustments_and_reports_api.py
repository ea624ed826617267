"""Staff over HTTP: manual point adjustments (scope `points`) and the liability report (scope
`reports`)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from loyalty.audit.models import AuditEntry
from loyalty.ledger import services as ledger
from loyalty.ledger.models import LotDraw, PointAccount, PointEntry, PointLot
from loyalty.members.services import erase
from loyalty.program import update_program
from loyalty.rules.pricing import BasketLine
from tests.factories import make_member, make_till, sell, staff_headers

LIABILITY = "/api/v1/reports/liability"


def adjustments(member_id: int) -> str:
    return f"/api/v1/members/{member_id}/adjustments"


@pytest.fixture
def empty_ledger(session):
    """The report covers the whole programme: start from an empty ledger. The PostgreSQL race
    tests commit rows to the shared database; they are deleted inside this test's transaction,
    which is rolled back like any other."""
    for table in (LotDraw, PointLot, PointEntry, PointAccount):
        session.execute(delete(table))


@pytest.fixture
def member(session, keys, clock, empty_ledger):
    """A member with 100 points earned at a till."""
    member, _ = make_member(session, keys, clock)
    sell(
        session,
        make_till(session, clock),
        keys,
        clock,
        member=member,
        lines=[BasketLine("TEA", 1, 10_000)],
    )
    return member


@pytest.fixture
def points_staff(session, clock):
    return staff_headers(session, clock, "points")


@pytest.fixture
def reports_staff(session, clock):
    return staff_headers(session, clock, "reports")


# --- adjustments -------------------------------------------------------------------------------


def test_staff_add_points_and_see_the_balance_before_and_after(
    client, session, member, points_staff
):
    response = client.post(
        adjustments(member.id),
        headers=points_staff,
        json={"points": 40, "reason": "apology for a long queue"},
    )

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["before"] == {"available": 100, "pending": 0}
    assert body["after"] == {"available": 140, "pending": 0}
    assert (body["member_id"], body["points"]) == (member.id, 40)
    assert body["reason"] == "apology for a long queue"
    assert isinstance(body["entry_id"], int)
    assert ledger.balance(session, member.id).available == 140


def test_a_retried_adjustment_with_the_same_idempotency_key_adjusts_once(
    client, session, clock, member, points_staff
):
    body = {"points": 40, "reason": "apology for a long queue"}
    headers = points_staff | {"Idempotency-Key": "desk-7-0001"}

    first = client.post(adjustments(member.id), headers=headers, json=body)
    retry = client.post(adjustments(member.id), headers=headers, json=body)
    other_key = client.post(
        adjustments(member.id), headers=points_staff | {"Idempotency-Key": "desk-7-0002"}, json=body
    )

    assert (first.status_code, retry.status_code, other_key.status_code) == (201, 200, 201)
    assert retry.get_json() == first.get_json()
    assert ledger.balance(session, member.id).available == 100 + 40 + 40
    adjusted = session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust")).all()
    assert len(adjusted) == 2
    # another staff member's key is theirs alone: the same string adjusts again
    someone_else = staff_headers(session, clock, "points") | {"Idempotency-Key": "desk-7-0001"}
    assert client.post(adjustments(member.id), headers=someone_else, json=body).status_code == 201


def test_an_idempotency_key_reused_for_another_adjustment_is_a_409_and_changes_nothing(
    client, session, member, points_staff
):
    headers = points_staff | {"Idempotency-Key": "k-1"}
    client.post(adjustments(member.id), headers=headers, json={"points": 5, "reason": "first"})

    reused = client.post(
        adjustments(member.id), headers=headers, json={"points": 50, "reason": "second"}
    )

    assert reused.status_code == 409, reused.get_json()
    assert list(reused.get_json()["errors"]) == ["Idempotency-Key"]
    assert ledger.balance(session, member.id).available == 105


def test_a_refused_adjustment_leaves_its_idempotency_key_free(
    client, session, member, points_staff
):
    headers = points_staff | {"Idempotency-Key": "k-overdraw"}
    body = {"points": -500, "reason": "typo"}
    assert client.post(adjustments(member.id), headers=headers, json=body).status_code == 409
    give = {"points": 400, "reason": "the points the member was owed"}
    client.post(adjustments(member.id), headers=points_staff, json=give)

    again = client.post(adjustments(member.id), headers=headers, json=body)

    assert again.status_code == 201, again.get_json()
    assert ledger.balance(session, member.id).available == 0


def test_an_idempotency_key_for_an_unknown_member_is_a_404(client, session, points_staff):
    response = client.post(
        adjustments(999_999),
        headers=points_staff | {"Idempotency-Key": "k-nobody"},
        json={"points": 5, "reason": "bonus"},
    )
    assert response.status_code == 404, response.get_json()


@pytest.mark.parametrize("key", ["", "has space", "x" * 65, "naïve"])
def test_a_malformed_idempotency_key_is_a_422_naming_the_header(
    client, session, member, points_staff, key
):
    response = client.post(
        adjustments(member.id),
        headers=points_staff | {"Idempotency-Key": key},
        json={"points": 5, "reason": "bonus"},
    )
    assert response.status_code == 422, response.get_json()
    assert "Idempotency-Key" in str(response.get_json())
    assert ledger.balance(session, member.id).available == 100


def test_an_adjustment_is_audited_with_the_staff_member_and_reason(
    client, session, clock, member, points_staff
):
    response = client.post(
        adjustments(member.id),
        headers=points_staff,
        json={"points": -30, "reason": "sale keyed twice"},
    )

    assert response.status_code == 201
    audit = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "points.adjust", AuditEntry.subject_id == str(member.id)
        )
    ).one()
    assert audit.actor.startswith("staff:")
    assert audit.created_at == clock.now()
    assert audit.details["reason"] == "sale keyed twice"
    assert audit.details["before"] == {"available": 100, "pending": 0}
    assert audit.details["after"] == {"available": 70, "pending": 0}
    history = client.get(
        f"/api/v1/members/{member.id}/ledger", headers=make_till(session, clock).headers
    ).get_json()
    assert history["entries"][0]["kind"] == "adjust"
    assert history["entries"][0]["points"] == -30


def test_removing_more_than_the_member_has_is_a_409_and_changes_nothing(
    client, session, member, points_staff
):
    response = client.post(
        adjustments(member.id),
        headers=points_staff,
        json={"points": -101, "reason": "closing the account"},
    )

    assert response.status_code == 409
    body = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert body["type"].endswith("/insufficient-points")
    assert "100 points available" in body["detail"]
    assert "points" in body["errors"]
    assert ledger.balance(session, member.id).available == 100
    assert (
        session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust")).first()
        is None
    )


def test_unknown_and_erased_members_are_404(client, session, clock, member, points_staff):
    body = {"points": 5, "reason": "goodwill"}
    unknown = client.post(adjustments(10**12), headers=points_staff, json=body)
    absurd = client.post(adjustments(10**30), headers=points_staff, json=body)
    erase(session, member_id=member.id, reason="erasure request", actor="test", now=clock.now())
    session.flush()
    erased = client.post(adjustments(member.id), headers=points_staff, json=body)

    assert (unknown.status_code, absurd.status_code, erased.status_code) == (404, 404, 404)
    assert erased.get_json()["type"].endswith("/not-found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": 0, "reason": "nothing"}, "points"),
        ({"points": "5", "reason": "a string"}, "points"),
        ({"points": 2.5, "reason": "a fraction"}, "points"),
        ({"points": 1_000_001, "reason": "too many"}, "points"),
        ({"points": -1_000_001, "reason": "too many"}, "points"),
        ({"points": True, "reason": "a boolean"}, "points"),
        ({"reason": "no points"}, "points"),
        ({"points": 5}, "reason"),
        ({"points": 5, "reason": "ab"}, "reason"),
        ({"points": 5, "reason": "   "}, "reason"),
        ({"points": 5, "reason": " ab "}, "reason"),
        ({"points": 5, "reason": "x" * 201}, "reason"),
        ({"points": 5, "reason": "nul \x00 inside"}, "reason"),
        ({"points": 5, "reason": 42}, "reason"),
        ({"points": 5, "reason": "fine", "member_id": 3}, "member_id"),
    ],
)
def test_bad_input_is_422_with_the_field_named(client, session, member, points_staff, body, field):
    response = client.post(adjustments(member.id), headers=points_staff, json=body)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert ledger.balance(session, member.id).available == 100


def test_a_staff_key_without_the_points_scope_is_403(client, session, clock, member):
    headers = staff_headers(session, clock, "reports", "program")

    response = client.post(
        adjustments(member.id), headers=headers, json={"points": 5, "reason": "goodwill"}
    )

    assert response.status_code == 403
    assert "points scope" in response.get_json()["detail"]
    assert ledger.balance(session, member.id).available == 100


def test_a_terminal_key_or_no_key_cannot_adjust_points(client, session, clock, member):
    till = make_till(session, clock)
    body = {"points": 5, "reason": "goodwill"}

    by_till = client.post(adjustments(member.id), headers=till.headers, json=body)
    anonymous = client.post(adjustments(member.id), json=body)

    assert (by_till.status_code, anonymous.status_code) == (401, 401)
    assert by_till.headers["WWW-Authenticate"] == "Bearer"
    assert ledger.balance(session, member.id).available == 100


# --- the liability report ----------------------------------------------------------------------


def test_the_liability_report_shows_outstanding_points_value_and_months(
    client, session, clock, member, points_staff, reports_staff
):
    client.post(
        adjustments(member.id), headers=points_staff, json={"points": -25, "reason": "duplicate"}
    )

    response = client.get(
        LIABILITY, headers=reports_staff, query_string={"from": "2026-02", "to": "2026-03"}
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"]) == ("2026-02", "2026-03")
    assert (body["outstanding_points"], body["points_owed"]) == (75, 0)
    assert (body["value_minor"], body["currency"]) == (75, "EUR")
    assert [m["month"] for m in body["months"]] == ["2026-02", "2026-03"]
    march = body["months"][1]
    assert (march["earned"], march["adjusted_removed"], march["net"]) == (100, 25, 75)
    assert body["months"][0]["earned"] == 0
    assert body["window"]["earned"] == 100
    assert body["breakage_window"] == {
        "expired": 0,
        "earned": 100,
        "ratio": "0.0000",
        "basis_points": 0,
    }
    assert body["as_of"] == clock.now().isoformat()


def test_the_report_defaults_to_the_last_twelve_months_in_the_programs_zone(
    client, session, clock, empty_ledger, reports_staff
):
    update_program(session, actor="test", now=clock.now(), timezone="Pacific/Auckland")
    session.flush()

    body = client.get(LIABILITY, headers=reports_staff).get_json()

    assert body["timezone"] == "Pacific/Auckland"
    assert (body["from"], body["to"]) == ("2025-04", "2026-03")
    assert len(body["months"]) == 12
    assert body["breakage_overall"]["ratio"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-1"}, "from"),
        ({"to": "March"}, "to"),
        ({"from": "2026-00"}, "from"),
        ({"to": "2026-13"}, "to"),
        ({"from": "2026-05", "to": "2026-04"}, "from"),
        ({"from": "2000-01", "to": "2026-04"}, "from"),
    ],
)
def test_a_bad_window_is_422_with_the_parameter_named(client, reports_staff, query, field):
    response = client.get(LIABILITY, headers=reports_staff, query_string=query)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_the_report_needs_the_reports_scope_and_a_staff_key(client, session, clock, points_staff):
    till = make_till(session, clock)

    assert client.get(LIABILITY, headers=points_staff).status_code == 403
    assert client.get(LIABILITY, headers=till.headers).status_code == 401
    assert client.get(LIABILITY).status_code == 401


def test_both_calls_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]

    assert "post" in paths["/api/v1/members/{member_id}/adjustments"]
    assert "get" in paths["/api/v1/reports/liability"]
    parameters = {p["name"] for p in paths["/api/v1/reports/liability"]["get"]["parameters"]}
    assert {"from", "to"} <= parameters
