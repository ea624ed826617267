"""Terminal keys: every till call needs a valid one, a key opens one store's sales only, and
the key itself is never kept in plain text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.db import Base
from loyalty.ledger.models import PointEntry
from loyalty.sales.models import Sale, SaleReturn
from loyalty.settings import LookupKeys
from loyalty.stores.services import revoke_terminal, rotate_key
from tests.factories import Till, make_member, make_till, qr_of, sale_body

API = "/api/v1"


@dataclass
class Counter:
    """One store's till with a member at the counter."""

    till: Till
    member_id: int
    qr: str


@pytest.fixture
def counter(session: Session, clock: FixedClock, keys: LookupKeys) -> Counter:
    member, card = make_member(session, keys, clock)
    return Counter(make_till(session, clock), member.id, qr_of(card, keys))


def calls(counter: Counter, clock: FixedClock) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every call of the till API, each with a body it would accept from a valid key."""
    sale = sale_body("AUTH-1", counter.qr, clock.now())
    basket = {k: v for k, v in sale.items() if k not in {"external_id", "occurred_at"}}
    member = f"{API}/members/{counter.member_id}"
    return [
        ("POST", f"{API}/pos/identify", {"code": counter.qr}),
        ("POST", f"{API}/pos/quote", basket),
        ("POST", f"{API}/pos/transactions", sale),
        (
            "POST",
            f"{API}/pos/transactions/AUTH-1/returns",
            {"external_id": "R-1", "lines": [{"sku": "MILK", "quantity": 1}]},
        ),
        ("POST", f"{API}/pos/transactions/AUTH-1/void", None),
        ("POST", f"{API}/members", {"name": "Grace Hopper", "email": "grace@example.com"}),
        ("GET", member, None),
        ("GET", f"{member}/ledger", None),
        ("GET", f"{API}/program", None),
    ]


def call(
    client: FlaskClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    authorization: str | None,
) -> TestResponse:
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.open(path, method=method, json=body, headers=headers)


def written(session: Session) -> dict[str, int]:
    session.expire_all()
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def assert_unauthorised(response: TestResponse, at: str, key: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 401, f"{at}: {body}"
    assert response.mimetype == "application/problem+json", at
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), at
    problem = response.get_json()
    assert {"type", "title", "status", "detail"} <= problem.keys(), at
    assert problem["status"] == 401
    assert key.split("_", 2)[2] not in body, f"{at}: the answer repeats the secret"


def _wrong(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


BAD_AUTHORIZATION = [
    pytest.param(None, id="no header"),
    pytest.param("", id="an empty header"),
    pytest.param("Basic dGlsbDpzZWNyZXQ=", id="basic auth"),
    pytest.param("Token {key}", id="the key under another scheme"),
    pytest.param("{key}", id="the key without a scheme"),
    pytest.param("Bearer", id="bearer and no key"),
    pytest.param("Bearer ", id="bearer and a blank"),
    pytest.param("Bearer not-a-key", id="a malformed key"),
    pytest.param("Bearer lt__", id="an empty id and secret"),
    pytest.param("Bearer lt_{key_id}_", id="the id without the secret"),
    pytest.param("Bearer lt_{key_id}_{wrong_secret}", id="a wrong secret"),
    pytest.param("Bearer xx_{key_id}_{secret}", id="a wrong prefix"),
    pytest.param("Bearer lt_{other_key_id}_{secret}", id="the secret under another id"),
    pytest.param("Bearer {key}x", id="one character too many"),
    pytest.param("Bearer {key_without_last}", id="one character too few"),
    pytest.param("Bearer lt_{key_id}_{secret_upper}", id="the secret in capitals"),
    pytest.param("Bearer " + "k" * 5000, id="5000 characters"),
    pytest.param("Bearer lt_\u00e9t\u00e9_\u00e9t\u00e9", id="latin-1 characters"),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
def test_a_call_without_a_valid_terminal_key_is_a_401_with_a_bearer_challenge(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    counter: Counter,
    authorization: str | None,
) -> None:
    other = make_till(session, clock)
    key = counter.till.key
    _, key_id, secret = key.split("_", 2)
    header = None
    if authorization is not None:
        header = authorization.format(
            key=key,
            key_id=key_id,
            secret=secret,
            wrong_secret=_wrong(secret),
            other_key_id=other.key.split("_", 2)[1],
            key_without_last=key[:-1],
            secret_upper=secret.upper() if secret.upper() != secret else _wrong(secret),
        )
    before = written(session)
    for method, path, body in calls(counter, clock):
        assert_unauthorised(call(client, method, path, body, header), f"{method} {path}", key)
    assert written(session) == before


def test_the_scheme_is_read_without_regard_to_case(
    client: FlaskClient, clock: FixedClock, counter: Counter
) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = call(
            client,
            "POST",
            f"{API}/pos/identify",
            {"code": counter.qr},
            f"{scheme} {counter.till.key}",
        )
        assert response.status_code == 200, scheme


def test_a_revoked_terminal_key_is_a_401_on_every_call(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    key = counter.till.key
    identify = call(client, "POST", f"{API}/pos/identify", {"code": counter.qr}, f"Bearer {key}")
    assert identify.status_code == 200

    revoke_terminal(session, terminal=counter.till.terminal, actor="test", now=clock.now())
    session.flush()
    before = written(session)
    for method, path, body in calls(counter, clock):
        response = call(client, method, path, body, f"Bearer {key}")
        assert_unauthorised(response, f"{method} {path}", key)
    assert written(session) == before


def test_a_rotated_key_replaces_the_old_one_at_once(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    old = counter.till.key
    new = rotate_key(session, terminal=counter.till.terminal, actor="test", now=clock.now())
    session.flush()
    path, body = f"{API}/pos/identify", {"code": counter.qr}
    assert_unauthorised(call(client, "POST", path, body, f"Bearer {old}"), "old key", old)
    assert call(client, "POST", path, body, f"Bearer {new}").status_code == 200


# Store isolation


def sale_of(session: Session, store_id: int, external_id: str) -> tuple[Any, ...]:
    """What a cashier of that store would see of a sale: status and points."""
    session.expire_all()
    sale = session.scalars(
        select(Sale).where(Sale.store_id == store_id, Sale.external_id == external_id)
    ).one()
    return sale.status, sale.points_earned, sale.points_redeemed, sale.points_reversed


def points_of(client: FlaskClient, till: Till, member_id: int) -> dict[str, int]:
    response = client.get(f"{API}/members/{member_id}", headers=till.headers)
    assert response.status_code == 200
    points: dict[str, int] = response.get_json()["balance"]
    return points


def test_a_till_of_another_store_cannot_return_or_void_a_sale_or_replay_its_return(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    store_a = counter.till
    store_b = make_till(session, clock)
    sold = client.post(
        f"{API}/pos/transactions",
        json=sale_body("B-SALE-1", counter.qr, clock.now()),
        headers=store_b.headers,
    )
    assert sold.status_code == 201
    partial = {"external_id": "B-RET-1", "lines": [{"sku": "MILK", "quantity": 1}]}
    returned = client.post(
        f"{API}/pos/transactions/B-SALE-1/returns", json=partial, headers=store_b.headers
    )
    assert returned.status_code == 201
    sale_before = sale_of(session, store_b.store.id, "B-SALE-1")
    points_before = points_of(client, store_b, counter.member_id)
    entries_before = session.scalar(select(func.count()).select_from(PointEntry))
    returns_before = session.scalar(select(func.count()).select_from(SaleReturn))

    attempts = {
        "replay of B's return": ("returns", partial),
        "a new return": (
            "returns",
            {"external_id": "A-RET-1", "lines": [{"sku": "BREAD", "quantity": 1}]},
        ),
        "a full return": (
            "returns",
            {
                "external_id": "A-RET-2",
                "lines": [
                    {"sku": line["sku"], "quantity": line["quantity"]}
                    for line in sale_body("x", None, clock.now())["lines"]
                ],
            },
        ),
        "a void": ("void", None),
    }
    for what, (action, body) in attempts.items():
        response = client.post(
            f"{API}/pos/transactions/B-SALE-1/{action}", json=body, headers=store_a.headers
        )
        assert response.status_code == 404, what
        assert response.mimetype == "application/problem+json", what
        assert "B-RET-1" not in response.get_data(as_text=True), what

    assert sale_of(session, store_b.store.id, "B-SALE-1") == sale_before
    assert sale_before[0] == "partially_returned"
    assert points_of(client, store_b, counter.member_id) == points_before
    assert session.scalar(select(func.count()).select_from(PointEntry)) == entries_before
    assert session.scalar(select(func.count()).select_from(SaleReturn)) == returns_before
    # Store B can still void its own sale.
    voided = client.post(f"{API}/pos/transactions/B-SALE-1/void", headers=store_b.headers)
    assert voided.status_code == 201
    assert voided.get_json()["sale_status"] == "voided"


def test_the_same_external_id_at_two_stores_is_two_different_sales(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    store_a = counter.till
    store_b = make_till(session, clock)
    body = sale_body("TILL-0001", counter.qr, clock.now())
    at_a = client.post(f"{API}/pos/transactions", json=body, headers=store_a.headers)
    at_b = client.post(f"{API}/pos/transactions", json=body, headers=store_b.headers)
    assert (at_a.status_code, at_b.status_code) == (201, 201)
    earned = at_a.get_json()["points"]["earned"]
    assert earned > 0
    assert at_b.get_json()["points"]["earned"] == earned
    assert points_of(client, store_a, counter.member_id)["available"] == 2 * earned
    stores = session.scalars(select(Sale.store_id).where(Sale.external_id == "TILL-0001")).all()
    assert sorted(stores) == sorted([store_a.store.id, store_b.store.id])

    # Each store replays its own sale and judges a reuse of the id on its own.
    replay = client.post(f"{API}/pos/transactions", json=body, headers=store_a.headers)
    assert replay.status_code == 200
    assert replay.get_json() == at_a.get_json()
    other_body = body | {"lines": body["lines"][:1]}
    conflict = client.post(f"{API}/pos/transactions", json=other_body, headers=store_b.headers)
    assert conflict.status_code == 409
    assert conflict.mimetype == "application/problem+json"

    # Voiding one leaves the other as it was.
    void = client.post(f"{API}/pos/transactions/TILL-0001/void", headers=store_a.headers)
    assert void.status_code == 201
    assert sale_of(session, store_a.store.id, "TILL-0001")[0] == "voided"
    assert sale_of(session, store_b.store.id, "TILL-0001") == ("completed", earned, 0, 0)
    assert points_of(client, store_b, counter.member_id)["available"] == earned


def test_a_sale_id_first_used_by_another_store_is_a_new_sale_here_not_its_replay(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    store_a = counter.till
    store_b = make_till(session, clock)
    body = sale_body("B-ONLY-1", counter.qr, clock.now())
    at_b = client.post(f"{API}/pos/transactions", json=body, headers=store_b.headers)
    assert at_b.status_code == 201
    before = sale_of(session, store_b.store.id, "B-ONLY-1")

    # Store A sending another body under B's id: not B's 409, A's own new sale.
    other = body | {"lines": body["lines"][:2]}
    at_a = client.post(f"{API}/pos/transactions", json=other, headers=store_a.headers)
    assert at_a.status_code == 201
    assert at_a.get_json()["subtotal"] != at_b.get_json()["subtotal"]
    assert sale_of(session, store_b.store.id, "B-ONLY-1") == before


# The key at rest


def everything_stored(session: Session) -> list[str]:
    """Every value of every row of every table, as text."""
    session.flush()
    values = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            values.extend(str(value) for value in row)
    return values


def test_a_terminal_key_is_never_stored_in_plain_text(
    client: FlaskClient, session: Session, clock: FixedClock, counter: Counter
) -> None:
    till = counter.till
    new_key = rotate_key(session, terminal=till.terminal, actor="test", now=clock.now())
    session.flush()
    # Use the key, so that whatever a request records is there to be searched too.
    headers = {"Authorization": f"Bearer {new_key}"}
    sold = client.post(
        f"{API}/pos/transactions", json=sale_body("K-1", counter.qr, clock.now()), headers=headers
    )
    assert sold.status_code == 201
    enrolled = client.post(
        f"{API}/members", json={"name": "Key Holder", "email": "key@example.com"}, headers=headers
    )
    assert enrolled.status_code == 201

    row = session.execute(
        text("SELECT key_id, key_hash FROM terminals WHERE id = :id"), {"id": till.terminal.id}
    ).one()
    stored = everything_stored(session)
    audit = [str(details) for details in session.scalars(select(AuditEntry.details))]
    assert audit  # store, terminal, key rotation, sale, enrolment: there is something to read
    for key in (till.key, new_key):
        secret = key.split("_", 2)[2]
        assert row.key_hash not in {key, secret}
        assert secret not in row.key_hash
        assert not any(secret in value for value in stored), "a key's secret is in the database"
        assert not any(secret in details for details in audit)
    # What the till's key is known by, its id, is kept: it is not the secret.
    assert new_key.startswith(f"lt_{row.key_id}_")
