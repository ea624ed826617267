"""What every answer says about itself, as a browser or a proxy reads it: no sniffing, nothing
with personal data kept in a cache, pages that no other site may frame and that run only the
scripts they ship, a 405 that says what is allowed, and a change that changes nothing refused."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from tests.factories import Till, make_till, staff_headers

API = "/api/v1"


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


def test_api_answers_are_not_sniffed_nor_kept_by_caches(client: FlaskClient, till: Till):
    member = client.post(f"{API}/members", headers=till.headers, json={"name": "Ann"})
    read = client.get(member.headers["Location"], headers=till.headers)
    missing = client.get(f"{API}/members/999999", headers=till.headers)
    for answer in (member, read, missing):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/api/docs"])
def test_pages_cannot_be_framed_and_run_only_their_own_scripts(client: FlaskClient, path: str):
    page = client.get(path)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
    )
    assert policy["frame-ancestors"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in policy.get("script-src", "")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page.get_data(as_text=True), "no inline script for the CSP to block"


def test_a_method_not_allowed_says_which_are(client: FlaskClient, till: Till):
    answer = client.delete(f"{API}/pos/identify", headers=till.headers)
    assert answer.status_code == 405
    assert answer.mimetype == "application/problem+json"
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}


@pytest.mark.parametrize(("path", "scope"), [("/tiers/GOLD", "tiers"), ("/program", "program")])
def test_a_patch_that_changes_nothing_is_refused(
    client: FlaskClient, session: Session, clock: FixedClock, path: str, scope: str
):
    staff = staff_headers(session, clock, "tiers", "program")
    client.post(
        f"{API}/tiers",
        headers=staff,
        json={"code": "GOLD", "name": "Gold", "rank": 1, "threshold": 1000},
    )
    for body in ({}, None):
        answer = client.patch(f"{API}{path}", headers=staff, json=body)
        assert answer.status_code == 422, (scope, body, answer.get_json())
        assert "_body" in answer.get_json()["errors"]
