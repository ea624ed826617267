"""Referrals over HTTP: a member's code, link and funnel (a till, or staff with `members`), and
for staff with the `referrals` scope the list, the programme's funnel and the terms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.coupons.offers import create_offer
from loyalty.members.models import Member
from loyalty.referrals.services import (
    Fingerprints,
    link_opened,
    record_referral,
    referral_code_of,
)
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import Till, make_member, make_till, staff_headers

API = "/api/v1"
SETTINGS = f"{API}/referral-settings"
KEY = "api-test-contact-key"
DEFAULT_TERMS = {
    "enabled": True,
    "min_purchase": 1000,
    "qualify_within_days": 30,
    "referrer_points": 500,
    "referee_points": 250,
    "referrer_offer_id": None,
    "referee_offer_id": None,
    "monthly_cap": 10,
    "reversal_window_days": 30,
}


@pytest.fixture
def staff(session: Session, clock: FixedClock) -> dict[str, str]:
    return staff_headers(session, clock, "referrals", "members")


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


def _member(session: Session, keys: LookupKeys, clock: FixedClock, **fields: Any) -> Member:
    member, _card = make_member(session, keys, clock, **fields)
    return member


def _refer(session: Session, friend: Member, code: str, clock: FixedClock) -> None:
    record_referral(
        session,
        referee_id=friend.id,
        code=code,
        now=clock.now(),
        fingerprints=Fingerprints(email=friend.email),
        contact_key=KEY,
    )
    session.flush()


def _json(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_a_member_sees_their_code_link_and_the_friends_they_brought(
    client, session, keys, clock, staff
):
    member = _member(session, keys, clock)
    first = _json(client.get(f"{API}/members/{member.id}/referral", headers=staff))
    code = first["code"]
    link_opened(session, code.lower(), clock.now())
    for _ in range(2):
        _refer(session, _member(session, keys, clock), code, clock)
    _refer(session, _member(session, keys, clock, email="x@example.com"), "NOBODY00", clock)

    again = _json(client.get(f"{API}/members/{member.id}/referral", headers=staff))

    assert first["link"] == f"/join/{code}"
    assert first["funnel"] == {
        "invited": 0,
        "enrolled": 0,
        "pending": 0,
        "qualified": 0,
        "rewarded": 0,
        "reversed": 0,
        "refused": {},
    }
    assert first["joined_through"] is None
    assert again["code"] == code, "the code is made once"
    assert again["funnel"] == {
        "invited": 1,
        "enrolled": 2,
        "pending": 2,
        "qualified": 0,
        "rewarded": 0,
        "reversed": 0,
        "refused": {},
    }


def test_a_friend_sees_how_their_own_referral_stands(client, session, keys, clock, staff):
    referrer = _member(session, keys, clock)
    friend = _member(session, keys, clock)
    _refer(session, friend, referral_code_of(session, referrer.id, clock.now()).code, clock)

    body = _json(client.get(f"{API}/members/{friend.id}/referral", headers=staff))

    assert body["joined_through"] == {
        "status": "pending",
        "reason": None,
        "qualify_by": (START + timedelta(days=30)).isoformat(),
    }


def test_a_till_reads_the_referral_of_members_of_its_store_only(client, session, keys, clock, till):
    own = _member(session, keys, clock, store_id=till.store.id)
    elsewhere = _member(session, keys, clock)

    mine = client.get(f"{API}/members/{own.id}/referral", headers=till.headers)
    other = client.get(f"{API}/members/{elsewhere.id}/referral", headers=till.headers)
    nobody = client.get(f"{API}/members/999999999/referral", headers=till.headers)

    assert mine.status_code == 200
    assert [other.status_code, nobody.status_code] == [404, 404]
    assert other.mimetype == "application/problem+json"


def test_staff_list_referrals_by_status_in_pages(client, session, keys, clock, staff):
    referrer = _member(session, keys, clock)
    code = referral_code_of(session, referrer.id, clock.now()).code
    friends = [_member(session, keys, clock) for _ in range(3)]
    for friend in friends:
        _refer(session, friend, code, clock)
    _refer(session, _member(session, keys, clock), "ZZZZZZZZ", clock)

    page = _json(client.get(f"{API}/referrals?status=pending&limit=2", headers=staff))
    rest = _json(
        client.get(
            f"{API}/referrals?status=pending&limit=2&cursor={page['next_cursor']}", headers=staff
        )
    )
    refused = _json(client.get(f"{API}/referrals?status=refused", headers=staff))

    listed = page["referrals"] + rest["referrals"]
    assert [r["referee_id"] for r in listed] == [f.id for f in reversed(friends)]
    assert {r["referrer_id"] for r in listed} == {referrer.id}
    assert rest["next_cursor"] is None
    assert [(r["status"], r["reason"], r["referrer_id"]) for r in refused["referrals"]] == [
        ("refused", "unknown_code", None)
    ]


def test_the_programmes_funnel_over_days(client, session, keys, clock, staff):
    referrer = _member(session, keys, clock)
    code = referral_code_of(session, referrer.id, clock.now()).code
    link_opened(session, code, clock.now())
    _refer(session, _member(session, keys, clock), code, clock)
    day = START.date().isoformat()

    body = _json(client.get(f"{API}/referrals/funnel?since={day}&until={day}", headers=staff))

    assert body["since"] == body["until"] == day
    assert body["timezone"] == "UTC"
    assert (body["funnel"]["invited"], body["funnel"]["enrolled"]) == (1, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-03-14&until=2026-03-01", "since"),
        ("since=2026-03-14", "until"),
        ("since=14/03/2026&until=2026-03-14", "since"),
    ],
)
def test_a_funnel_with_a_bad_period_is_422_naming_the_field(client, staff, query, field):
    response = client.get(f"{API}/referrals/funnel?{query}", headers=staff)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_staff_read_and_change_the_terms_and_the_change_is_audited(client, session, staff):
    assert _json(client.get(SETTINGS, headers=staff)) == DEFAULT_TERMS
    offer = create_offer(
        session, {"name": "Welcome", "kind": "amount_off", "value": 300}, actor="t", now=START
    )
    session.flush()

    changed = client.patch(
        SETTINGS,
        headers=staff,
        json={"referee_offer_id": offer.id, "monthly_cap": None, "min_purchase": 1500},
    )

    expected = DEFAULT_TERMS | {
        "referee_offer_id": offer.id,
        "monthly_cap": None,
        "min_purchase": 1500,
    }
    assert _json(changed) == expected
    assert _json(client.get(SETTINGS, headers=staff)) == expected
    (entry,) = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "referral_settings.update")
    ).all()
    assert entry.actor.startswith("staff:")
    assert entry.details["before"] == {
        "referee_offer_id": None,
        "monthly_cap": 10,
        "min_purchase": 1000,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"referrer_points": -1}, "referrer_points"),
        ({"referrer_points": "500"}, "referrer_points"),
        ({"qualify_within_days": 0}, "qualify_within_days"),
        ({"monthly_cap": 0}, "monthly_cap"),
        ({"enabled": "yes"}, "enabled"),
        ({"referee_points": None}, "referee_points"),
        ({"referrer_offer_id": 987654}, "referrer_offer_id"),
        ({"bonus": 1}, "bonus"),
        ({}, "_body"),
    ],
)
def test_bad_terms_are_422_naming_the_field_and_nothing_changes(
    client, session, staff, body, field
):
    response = client.patch(SETTINGS, headers=staff, json=body)

    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert _json(client.get(SETTINGS, headers=staff)) == DEFAULT_TERMS
    assert not session.scalars(
        select(AuditEntry).where(AuditEntry.action == "referral_settings.update")
    ).all()


def test_the_programme_side_needs_a_staff_key_with_the_referrals_scope(
    client: FlaskClient, session, keys, clock, till
):
    members_only = staff_headers(session, clock, "members")
    member = _member(session, keys, clock)
    calls = [
        ("get", f"{API}/referrals", None),
        ("get", f"{API}/referrals/funnel?since=2026-03-01&until=2026-03-31", None),
        ("get", SETTINGS, None),
        ("patch", SETTINGS, {"enabled": False}),
    ]
    for method, path, body in calls:
        assert getattr(client, method)(path, json=body).status_code == 401, path
        assert getattr(client, method)(path, headers=members_only, json=body).status_code == 403
        assert getattr(client, method)(path, headers=till.headers, json=body).status_code == 401
    assert client.get(f"{API}/members/{member.id}/referral").status_code == 401
    referrals_only = staff_headers(session, clock, "referrals")
    refused = client.get(f"{API}/members/{member.id}/referral", headers=referrals_only)
    assert refused.status_code == 403
