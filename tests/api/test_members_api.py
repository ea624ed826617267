"""Enrolment, member reads, ledger history and card images through HTTP."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from loyalty.audit.models import AuditEntry
from loyalty.cards.qr import verify_payload
from loyalty.cards.services import create_batch
from tests.conftest import CARD_KEY
from tests.factories import make_till, sale_body, staff_headers


@pytest.fixture
def till(session, clock):
    return make_till(session, clock)


def _enrol(client, till, **fields):
    fields.setdefault("name", "Grace Hopper")
    return client.post("/api/v1/members", headers=till.headers, json=fields)


def test_enrolling_at_the_till_issues_a_card_and_normalises_contacts(client, till, session):
    response = _enrol(
        client,
        till,
        email=" Grace@Example.COM ",
        phone="020 7946 0019",
        birthday="1990-02-28",
        consents={"sms": True},
        acquisition_source="in store",
    )
    assert response.status_code == 201, response.get_json()
    member = response.get_json()
    assert member["email"] == "grace@example.com"
    assert member["phone"] == "+442079460019"
    assert member["consents"]["sms"] is True
    assert member["consents"]["email"] is False
    assert member["balance"] == {"available": 0, "pending": 0}
    assert member["consents"]["sms_given_at"] is not None
    assert member["consents"]["email_given_at"] is None
    [card] = member["cards"]
    assert card["status"] == "active"
    assert verify_payload((CARD_KEY,), card["qr_payload"]) == card["number"]
    audit = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "member.enrol", AuditEntry.subject_id == str(member["id"])
        )
    ).all()
    assert len(audit) == 1
    assert audit[0].actor == till.terminal.actor


def test_enrolling_with_a_pre_printed_card_activates_it_once(client, till, session, clock):
    _batch, printed = create_batch(
        session, card_key=CARD_KEY, size=2, note=None, actor="test", now=clock.now()
    )
    response = _enrol(client, till, card_code=printed[0].payload)
    assert response.status_code == 201
    assert response.get_json()["cards"][0]["number"] == printed[0].number
    again = _enrol(client, till, name="Someone Else", card_code=printed[0].number)
    assert again.status_code == 409
    assert "only a new unassigned card" in again.get_json()["detail"]


@pytest.mark.parametrize("field", ["email", "phone"])
def test_an_email_or_phone_already_used_by_a_member_is_refused(client, till, field):
    contact = {"email": "dup@example.com", "phone": "+44 20 7946 0033"}[field]
    assert _enrol(client, till, **{field: contact}).status_code == 201
    response = _enrol(client, till, name="Other", **{field: contact})
    assert response.status_code == 409
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+44 20 7946"}, "phone"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"consents": {"sms": True}}, "consents.sms"),
        ({"consents": {"email": True}}, "consents.email"),
        ({"card_code": "9123456789012346"}, "card_code"),
    ],
)
def test_bad_enrolment_details_are_refused_with_the_field_named(client, till, fields, field):
    response = _enrol(client, till, **fields)
    assert 400 <= response.status_code < 500
    assert set(response.get_json()["errors"]) == {field}


def test_reading_an_unknown_member_is_404(client, till):
    response = client.get("/api/v1/members/999999", headers=till.headers)
    assert response.status_code == 404


def test_the_ledger_pages_with_a_cursor(client, till, clock):
    member = _enrol(client, till).get_json()
    code = member["cards"][0]["qr_payload"]
    for n in range(5):
        assert (
            client.post(
                "/api/v1/pos/transactions",
                headers=till.headers,
                json=sale_body(f"ledger-{n}", code, clock.now()),
            ).status_code
            == 201
        )
    url = f"/api/v1/members/{member['id']}/ledger"
    first = client.get(f"{url}?limit=2", headers=till.headers).get_json()
    second = client.get(
        f"{url}?limit=2&cursor={first['next_cursor']}", headers=till.headers
    ).get_json()
    third = client.get(
        f"{url}?limit=2&cursor={second['next_cursor']}", headers=till.headers
    ).get_json()
    pages = first["entries"] + second["entries"] + third["entries"]
    assert [e["kind"] for e in pages] == ["earn"] * 5
    assert len({e["id"] for e in pages}) == 5
    assert third["next_cursor"] is None
    assert pages[0]["reason"] == "sale ledger-4"


@pytest.mark.parametrize("image_format", ["png", "svg"])
def test_card_images_decode_back_to_the_cards_payload(client, till, session, clock, image_format):
    card = _enrol(client, till).get_json()["cards"][0]
    staff = staff_headers(session, clock, "members")
    response = client.get(f"/api/v1/cards/{card['number']}/qr.{image_format}", headers=staff)
    assert response.status_code == 200
    if image_format == "png":
        assert response.mimetype == "image/png"
        image = Image.open(io.BytesIO(response.get_data())).convert("L")
        assert zxingcpp.read_barcodes(image)[0].text == card["qr_payload"]
    else:
        assert response.mimetype == "image/svg+xml"
        from tests.unit.test_cards import _rasterise_svg  # noqa: PLC0415

        image = _rasterise_svg(response.get_data())
        assert zxingcpp.read_barcodes(image)[0].text == card["qr_payload"]


def test_blocking_a_card_is_audited_and_stops_it_at_every_till(client, till, session, clock):
    card = _enrol(client, till).get_json()["cards"][0]
    other_till = make_till(session, clock)
    response = client.post(
        f"/api/v1/cards/{card['number']}/block", headers=till.headers, json={"reason": "stolen"}
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "blocked"
    refused = client.post(
        "/api/v1/pos/identify", headers=other_till.headers, json={"code": card["qr_payload"]}
    )
    assert refused.status_code == 409
    assert "stolen" in refused.get_json()["detail"]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "card.block")).one()
    assert audit.details == {"before": "active", "after": "blocked", "reason": "stolen"}


def test_a_member_can_be_given_a_printed_card_and_both_cards_work(client, till, session, clock):
    member = _enrol(client, till).get_json()
    _batch, printed = create_batch(
        session, card_key=CARD_KEY, size=1, note=None, actor="test", now=clock.now()
    )
    added = client.post(
        f"/api/v1/members/{member['id']}/cards",
        headers=till.headers,
        json={"card_code": printed[0].payload},
    )
    assert added.status_code == 201
    for code in (member["cards"][0]["qr_payload"], printed[0].payload):
        found = client.post("/api/v1/pos/identify", headers=till.headers, json={"code": code})
        assert found.get_json()["member"]["id"] == member["id"]
    again = client.post(
        f"/api/v1/members/{member['id']}/cards",
        headers=till.headers,
        json={"card_code": printed[0].payload},
    )
    assert again.status_code == 409


def test_failed_card_and_member_lookups_share_the_guessing_budget(app, client, session, clock):
    till = make_till(session, clock)
    probes = [
        lambda: client.get("/api/v1/members/987654", headers=till.headers),
        lambda: client.get("/api/v1/cards/9000000000000001", headers=till.headers),
        lambda: client.post(
            "/api/v1/cards/9000000000000001/block", headers=till.headers, json={"reason": "probe"}
        ),
        lambda: client.post(
            "/api/v1/pos/identify", headers=till.headers, json={"code": "9000000000000001"}
        ),
    ]
    statuses = [probes[n % len(probes)]().status_code for n in range(32)]
    assert statuses[:30] == [404] * 30
    assert statuses[30:] == [429, 429]
