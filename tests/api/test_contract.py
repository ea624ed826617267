"""The API contract as a POS integrator reads it: replays answer byte for byte, every 201 says
where the new thing is, one name for the balance, members can be changed, searched and
exported, retries with an Idempotency-Key are safe, every answer carries its request id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.cards.services import create_batch
from loyalty.clock import FixedClock
from loyalty.members.models import ConsentEvent
from loyalty.members.services import erase
from loyalty.program import update_program
from loyalty.rules.services import create_rule
from loyalty.tiers.services import create_tier
from tests.conftest import CARD_KEY
from tests.factories import Till, make_member, make_till, qr_of, sale_body, staff_headers

API = "/api/v1"


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


def _sale(client: FlaskClient, till: Till, code: str, external_id: str, clock: FixedClock) -> Any:
    return client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body(external_id, code, clock.now(), redeem_points=0),
    )


# --- replays ----------------------------------------------------------------------------------


def test_a_replayed_sale_return_and_void_answer_exactly_the_first_bytes(
    client, session, till, keys, clock
):
    _member, card = make_member(session, keys, clock)
    body = sale_body("R-1", qr_of(card, keys), clock.now(), redeem_points=0)
    first = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)
    clock.advance(timedelta(minutes=5))  # nothing about the replay may depend on when it came
    replay = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.data == first.data

    url = f"{API}/pos/transactions/R-1"
    body = {"external_id": "RET-1", "lines": [{"sku": "MILK", "quantity": 1}]}
    returned = client.post(f"{url}/returns", headers=till.headers, json=body)
    returned_again = client.post(f"{url}/returns", headers=till.headers, json=body)
    assert (returned.status_code, returned_again.status_code) == (201, 200)
    assert returned_again.data == returned.data

    voided = client.post(f"{url}/void", headers=till.headers)
    voided_again = client.post(f"{url}/void", headers=till.headers)
    assert (voided.status_code, voided_again.status_code) == (201, 200)
    assert voided_again.data == voided.data


def test_a_replayed_sale_with_a_new_tier_a_rule_bonus_and_pending_points_answers_the_same(
    client, session, till, keys, clock
):
    create_tier(
        session, code="SILVER", name="Silver", rank=1, threshold=100, actor="t", now=clock.now()
    )
    create_rule(
        session,
        {
            "name": "Double",
            "kind": "promotion",
            "params": {"mode": "multiply", "multiplier_percent": 200},
        },
        actor="t",
        now=clock.now(),
    )
    update_program(session, actor="t", now=clock.now(), pending_days=3)
    _member, card = make_member(session, keys, clock)
    body = sale_body("R-2", qr_of(card, keys), clock.now())
    first = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)
    clock.advance(timedelta(days=4))  # the points have matured, the tier would not change now

    replay = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)

    sale = first.get_json()
    assert (sale["tier"]["code"], sale["tier_changed"]) == ("SILVER", True)
    assert [reason["rule"] for reason in sale["points"]["reasons"]] == ["base", "Double"]
    assert sale["balance"]["pending"] == sale["points"]["earned"] > 0
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.data == first.data


# --- Location ---------------------------------------------------------------------------------


def _is_there(client: FlaskClient, created: Any, headers: dict[str, str]) -> None:
    """A 201 names what it created (Location), and reading it there answers the same."""
    assert created.status_code == 201, created.get_json()
    location = created.headers["Location"]
    there = client.get(location, headers=headers)
    assert there.status_code == 200, location
    shown, answered = there.get_json(), created.get_json()
    shared = set(shown) & set(answered)
    assert shared, location
    assert {k: shown[k] for k in shared} == {k: answered[k] for k in shared}, location


def test_every_201_names_what_it_created_and_reading_it_there_answers_the_same_thing(
    client, session, till, clock
):
    staff = staff_headers(session, clock, "points", "tiers", "rules", "members")
    enrolled = client.post(f"{API}/members", headers=till.headers, json={"name": "Ann"})
    _is_there(client, enrolled, staff)  # a till reads it masked (test_privacy_and_guessing)
    member_id = enrolled.get_json()["id"]
    sold = _sale(client, till, enrolled.get_json()["cards"][0]["qr_payload"], "L-1", clock)
    _is_there(client, sold, till.headers)
    url = f"{API}/pos/transactions/L-1"
    returned = client.post(
        f"{url}/returns",
        headers=till.headers,
        json={"external_id": "LR-1", "lines": [{"sku": "SOAP", "quantity": 1}]},
    )
    _is_there(client, returned, till.headers)
    _is_there(client, client.post(f"{url}/void", headers=till.headers), till.headers)
    _batch, printed = create_batch(
        session, card_key=CARD_KEY, size=2, note=None, actor="test", now=clock.now()
    )
    handed = client.post(
        f"{API}/members/{member_id}/cards",
        headers=till.headers,
        json={"card_code": printed[0].payload},
    )
    _is_there(client, handed, staff)
    replaced = client.post(
        f"{API}/cards/{printed[0].number}/replace",
        headers=till.headers,
        json={"reason": "lost", "new_card_code": printed[1].number},
    )
    _is_there(client, replaced, staff)
    adjusted = client.post(
        f"{API}/members/{member_id}/adjustments",
        headers=staff,
        json={"points": 5, "reason": "a goodwill gesture"},
    )
    _is_there(client, adjusted, staff)
    tier = client.post(
        f"{API}/tiers",
        headers=staff,
        json={"code": "GOLD", "name": "Gold", "rank": 1, "threshold": 100_000},
    )
    _is_there(client, tier, staff)
    rule = client.post(
        f"{API}/rules",
        headers=staff,
        json={"name": "Visit", "kind": "visit", "params": {"points": 5}},
    )
    _is_there(client, rule, staff)


# --- one name for the balance -----------------------------------------------------------------


def test_the_balance_has_one_name_and_shape_in_identify_member_quote_and_sale(
    client, session, till, keys, clock
):
    _member, card = make_member(session, keys, clock)
    code = qr_of(card, keys)
    body = sale_body("B-1", code, clock.now())
    quote = client.post(
        f"{API}/pos/quote",
        headers=till.headers,
        json={k: v for k, v in body.items() if k not in {"external_id", "occurred_at"}},
    ).get_json()
    sale = client.post(f"{API}/pos/transactions", headers=till.headers, json=body).get_json()
    identified = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": code})
    member = client.get(f"{API}/members/{_member.id}", headers=till.headers).get_json()

    balances = [quote["balance"], sale["balance"], identified.get_json()["balance"]]
    balances.append(member["balance"])
    assert all(set(b) == {"available", "pending"} for b in balances)
    assert balances[0] == balances[1] == balances[2] == balances[3]
    assert sale["points"]["earned"] == balances[1]["available"]
    assert "points" not in member
    assert "balance_after" not in quote


# --- members change -------------------------------------------------------------------------


def _enrol(client: FlaskClient, till: Till, **fields: Any) -> dict[str, Any]:
    response = client.post(f"{API}/members", headers=till.headers, json={"name": "Ann", **fields})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_a_member_changes_name_contacts_and_consents_and_each_consent_change_is_kept(
    client, session, till, clock
):
    member = _enrol(client, till, email="ann@example.com", consents={"email": True})
    url = f"{API}/members/{member['id']}"
    clock.advance(timedelta(days=3))

    changed = client.patch(
        url,
        headers=till.headers,
        json={"name": "Ann Smith", "phone": "020 7946 0055", "consents": {"sms": True}},
    )

    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["name"], body["phone"]) == ("Ann Smith", "+44*******055"), "masked to a till"
    staff = staff_headers(session, clock, "members")
    assert client.get(url, headers=staff).get_json()["phone"] == "+442079460055"
    assert body["consents"]["sms"] is True
    assert body["consents"]["sms_given_at"] == clock.now().isoformat()
    assert body["consents"]["email"] is True, "what the change left out stays"

    clock.advance(timedelta(days=1))
    cleared = client.patch(url, headers=till.headers, json={"email": None}).get_json()
    assert cleared["email"] is None
    assert cleared["consents"]["email"] is False, "no address, no consent to write to it"
    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.member_id == member["id"]).order_by(ConsentEvent.id)
    ).all()
    assert [(e.channel, e.granted, e.source) for e in events] == [
        ("email", True, till.terminal.actor),
        ("sms", True, till.terminal.actor),
        ("email", False, till.terminal.actor),
    ]
    assert events[1].at < events[2].at


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "_body"),
        ({"name": ""}, 422, "name"),
        ({"email": "not-an-email"}, 422, "email"),
        ({"consents": {"sms": True}}, 422, "consents.sms"),
        ({"points": 10}, 422, "points"),
        ({"email": "taken@example.com"}, 409, "email"),
    ],
)
def test_a_bad_change_is_refused_with_the_field_named_and_changes_nothing(
    client, till, body, status, field
):
    _enrol(client, till, email="taken@example.com", phone=None)
    member = _enrol(client, till, email="mine@example.com")
    url = f"{API}/members/{member['id']}"

    refused = client.patch(url, headers=till.headers, json=body)

    assert refused.status_code == status, refused.get_json()
    assert field in refused.get_json()["errors"]
    assert client.get(url, headers=till.headers).get_json()["email"] == "m**@example.com"


# --- staff search and export ----------------------------------------------------------------


def test_staff_search_members_by_contact_card_and_name_prefix_page_by_page(
    client, session, till, keys, clock
):
    staff = staff_headers(session, clock, "members")
    ann, card = make_member(session, keys, clock, name="Ann Jones", phone="+44 20 7946 0101")
    for n in range(3):
        make_member(session, keys, clock, name=f"Annabel {n}")
    make_member(session, keys, clock, name="Bob")
    gone, _ = make_member(session, keys, clock, name="Anna Erased")
    erase(session, member_id=gone.id, reason="asked", actor="test", now=clock.now())
    session.flush()

    def search(**query: Any) -> dict[str, Any]:
        response = client.get(f"{API}/members", headers=staff, query_string=query)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    assert [m["id"] for m in search(email=ann.email.upper())["members"]] == [ann.id]
    assert [m["id"] for m in search(phone="020 7946 0101")["members"]] == [ann.id]
    spaced = " ".join(card.number[i : i + 4] for i in range(0, 16, 4))
    assert [m["id"] for m in search(card_number=spaced)["members"]] == [ann.id]
    first = search(name="ann", limit=2)
    second = search(name="ann", limit=2, cursor=first["next_cursor"])
    names = [m["name"] for m in first["members"] + second["members"]]
    assert names == ["Ann Jones", "Annabel 0", "Annabel 1", "Annabel 2"]
    assert second["next_cursor"] is None
    assert search(name="100%")["members"] == [], "wildcards in the prefix are plain text"


def test_search_and_export_need_a_staff_key_with_the_members_scope(
    client, session, till, keys, clock
):
    member, _ = make_member(session, keys, clock)
    reports = staff_headers(session, clock, "reports")
    for path in (f"{API}/members?name=a", f"{API}/members/{member.id}/export"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=till.headers).status_code == 401
        assert client.get(path, headers=reports).status_code == 403


def test_the_export_holds_everything_about_the_member_and_nothing_of_anyone_else(
    client, session, till, keys, clock
):
    staff = staff_headers(session, clock, "members")
    member, card = make_member(session, keys, clock, email_consent=True)
    other, other_card = make_member(session, keys, clock)
    _sale(client, till, qr_of(card, keys), "E-1", clock)
    _sale(client, till, qr_of(other_card, keys), "E-2", clock)

    exported = client.get(f"{API}/members/{member.id}/export", headers=staff)

    assert exported.status_code == 200
    body = exported.get_json()
    assert body["member"]["id"] == member.id
    assert body["member"]["email"] == member.email
    assert [s["external_id"] for s in body["sales"]] == ["E-1"]
    assert len(body["sales"][0]["lines"]) == 5
    assert [e["kind"] for e in body["entries"]] == ["earn"]
    assert [(c["channel"], c["granted"]) for c in body["consent_history"]] == [("email", True)]
    assert str(other.email) not in exported.get_data(as_text=True)


# --- Idempotency-Key --------------------------------------------------------------------------


def test_a_retried_enrolment_answers_the_first_result_and_enrols_once(client, till):
    headers = till.headers | {"Idempotency-Key": "enrol-0001"}
    body = {"name": "Ann", "email": "ann@example.com"}

    first = client.post(f"{API}/members", headers=headers, json=body)
    retry = client.post(f"{API}/members", headers=headers, json=body)
    other = client.post(f"{API}/members", headers=headers, json={**body, "name": "Bob"})

    assert (first.status_code, retry.status_code, other.status_code) == (201, 200, 409)
    assert retry.data == first.data
    assert other.get_json()["errors"] == {"Idempotency-Key": [other.get_json()["detail"]]}


def test_retried_card_block_replace_and_hand_out_do_it_once(client, session, till, keys, clock):
    member, card = make_member(session, keys, clock)
    _batch, printed = create_batch(
        session, card_key=CARD_KEY, size=2, note=None, actor="test", now=clock.now()
    )
    identified = client.post(
        f"{API}/pos/identify", headers=till.headers, json={"code": qr_of(card, keys)}
    )
    assert identified.status_code == 200, "the till may now work on her cards"

    def twice(path: str, body: dict[str, Any], key: str) -> tuple[Any, Any]:
        headers = till.headers | {"Idempotency-Key": key}
        return (
            client.post(path, headers=headers, json=body),
            client.post(path, headers=headers, json=body),
        )

    handed, handed_again = twice(
        f"{API}/members/{member.id}/cards", {"card_code": printed[0].number}, "hand-1"
    )
    assert (handed.status_code, handed_again.status_code) == (201, 200)
    assert handed_again.data == handed.data
    replaced, replaced_again = twice(
        f"{API}/cards/{card.number}/replace", {"reason": "lost"}, "replace-1"
    )
    assert (replaced.status_code, replaced_again.status_code) == (201, 200)
    assert replaced_again.data == replaced.data, "one new card, not two"
    cards = client.get(f"{API}/members/{member.id}", headers=till.headers).get_json()["cards"]
    assert len(cards) == 3  # the first card (now blocked), the handed-out one, the replacement
    blocked, blocked_again = twice(
        f"{API}/cards/{printed[0].number}/block", {"reason": "stolen"}, "block-1"
    )
    assert (blocked.status_code, blocked_again.status_code) == (200, 200)
    assert blocked_again.data == blocked.data
    assert blocked.get_json()["status"] == "blocked"


def test_idempotency_keys_belong_to_the_caller_that_sent_them(client, session, clock):
    a, b = make_till(session, clock), make_till(session, clock)
    body = {"name": "Ann"}
    key = {"Idempotency-Key": "same-key"}
    first = client.post(f"{API}/members", headers=a.headers | key, json=body)
    second = client.post(f"{API}/members", headers=b.headers | key, json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["id"] != second.get_json()["id"]


# --- request ids ------------------------------------------------------------------------------


def test_every_answer_carries_a_request_id_and_a_problem_names_it(client, till):
    made = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": "nobody@x.io"})
    given = client.post(
        f"{API}/pos/identify",
        headers=till.headers | {"X-Request-ID": "till-7:0042"},
        json={"code": "nobody@x.io"},
    )
    nasty = client.get("/health", headers={"X-Request-ID": "a b\x7f" + "x" * 200})

    assert made.status_code == 404
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.get_json()["request_id"] == made.headers["X-Request-ID"]
    assert given.headers["X-Request-ID"] == "till-7:0042"
    assert given.get_json()["request_id"] == "till-7:0042"
    assert nasty.headers["X-Request-ID"] != "a b\x7f" + "x" * 200
    assert made.get_json()["type"].startswith("https://loyalty.example/problems/")


# --- metrics ----------------------------------------------------------------------------------


def _counter(client: FlaskClient, headers: dict[str, str], name: str) -> float:
    scraped = client.get("/metrics", headers=headers)
    assert scraped.status_code == 200
    assert scraped.mimetype == "text/plain"
    for line in scraped.get_data(as_text=True).splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def test_metrics_count_committed_sales_and_points_for_a_staff_key_with_the_metrics_scope(
    client, session, till, keys, clock
):
    _member, card = make_member(session, keys, clock)
    metrics = staff_headers(session, clock, "metrics")
    sales_before = _counter(client, metrics, "loyalty_sales_committed_total")
    earned_before = _counter(client, metrics, "loyalty_points_earned_total")

    body = sale_body("M-1", qr_of(card, keys), clock.now())
    sale = client.post(f"{API}/pos/transactions", headers=till.headers, json=body).get_json()
    replay = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)
    assert replay.status_code == 200  # a replay counts nothing

    assert _counter(client, metrics, "loyalty_sales_committed_total") == sales_before + 1
    earned = _counter(client, metrics, "loyalty_points_earned_total") - earned_before
    assert earned == sale["points"]["earned"] > 0
    text = client.get("/metrics", headers=metrics).get_data(as_text=True)
    assert 'loyalty_http_request_duration_seconds_count{endpoint="pos.record"' in text
    assert "# TYPE loyalty_outbox_backlog gauge" in text


def test_metrics_are_not_public(client, session, till, clock):
    reports = staff_headers(session, clock, "reports")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=till.headers).status_code == 401
    assert client.get("/metrics", headers=reports).status_code == 403


def test_after_an_erasure_a_retried_enrolment_gives_back_no_personal_data(
    client, session, till, clock
):
    headers = till.headers | {"Idempotency-Key": "enrol-erased"}
    body = {"name": "Ann Private", "email": "ann.private@example.com"}
    first = client.post(f"{API}/members", headers=headers, json=body)
    assert first.status_code == 201
    erase(session, member_id=first.get_json()["id"], reason="asked", actor="test", now=clock.now())
    session.flush()

    retry = client.post(f"{API}/members", headers=headers, json=body)

    assert retry.status_code == 409
    assert "ann.private" not in retry.get_data(as_text=True).lower()
    assert "Ann Private" not in retry.get_data(as_text=True)


def test_a_till_changes_only_the_members_enrolled_at_its_store(client, session, till, clock):
    other = make_till(session, clock)
    member = _enrol(client, till, email="mine@example.com")
    url = f"{API}/members/{member['id']}"

    refused = client.patch(url, headers=other.headers, json={"email": "thief@example.com"})
    staff = staff_headers(session, clock, "members")
    by_staff = client.patch(url, headers=staff, json={"name": "Ann B"})

    assert refused.status_code == 404
    assert by_staff.status_code == 200
    shown = client.get(url, headers=staff).get_json()
    assert (shown["email"], shown["name"]) == ("mine@example.com", "Ann B")
