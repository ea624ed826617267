"""Signing in to the till in a browser: what a cashier sees, and what a guesser, a forger of
requests or a phisher with a crafted link does not get."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from loyalty.clock import FixedClock
from loyalty.staff.accounts import create_account, disable_account
from loyalty.staff.models import StaffRole
from server.core.limits import FailureBudget
from tests.conftest import app_settings, unique
from tests.factories import make_till

PASSWORD = "correct horse battery"
WRONG = "The username or the password is wrong."


@dataclass
class Cashier:
    username: str
    store_name: str
    store_code: str


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "hidden" and found.get("name"):
            self.values[str(found["name"])] = found.get("value") or ""


def csrf_token(client: FlaskClient, path: str = "/till/sign-in") -> str:
    page = client.get(path)
    assert page.status_code == 200
    parser = _HiddenInputs()
    parser.feed(page.get_data(as_text=True))
    return parser.values["csrf_token"]


def sign_in(
    client: FlaskClient, username: str, password: str = PASSWORD, *, query: str = ""
) -> TestResponse:
    token = csrf_token(client)
    return client.post(
        f"/till/sign-in{query}",
        data={"username": username, "password": password, "csrf_token": token},
    )


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie is not None else None


def text_of(answer: TestResponse) -> str:
    return answer.get_data(as_text=True)


def make_account(session: Session, clock: FixedClock, role: StaffRole, store_id: int | None) -> str:
    username = unique(role.value.replace("_", "-"))
    create_account(
        session,
        username=username,
        password=PASSWORD,
        role=role,
        store_id=store_id,
        actor="test",
        now=clock.now(),
    )
    session.flush()
    return username


@pytest.fixture
def cashier(session: Session, clock: FixedClock) -> Cashier:
    store = make_till(session, clock).store
    username = make_account(session, clock, StaffRole.CASHIER, store.id)
    return Cashier(username, store.name, store.code)


def test_a_cashier_signs_in_and_sees_their_name_and_store(client: FlaskClient, cashier: Cashier):
    answer = sign_in(client, cashier.username)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/"

    start = client.get("/till/")
    assert start.status_code == 200
    page = text_of(start)
    assert cashier.username in page
    assert cashier.store_name in page
    assert cashier.store_code in page
    assert 'name="code"' in page  # the scan field


def test_a_wrong_password_and_an_unknown_user_are_told_the_same(
    client: FlaskClient, cashier: Cashier
):
    wrong = sign_in(client, cashier.username, "not the password at all")
    unknown = sign_in(client, "nobody-here", PASSWORD)
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert WRONG in text_of(answer)
    assert text_of(wrong).count("till-error") == text_of(unknown).count("till-error") == 1
    assert client.get("/till/").status_code == 302


def test_a_post_without_the_csrf_token_is_refused_and_signs_nobody_in(
    client: FlaskClient, cashier: Cashier
):
    client.get("/till/sign-in")
    answer = client.post("/till/sign-in", data={"username": cashier.username, "password": PASSWORD})
    assert answer.status_code == 400
    forged = client.post(
        "/till/sign-in",
        data={"username": cashier.username, "password": PASSWORD, "csrf_token": "forged"},
    )
    assert forged.status_code == 400
    assert client.get("/till/").headers["Location"].startswith("/till/sign-in")


def test_signing_in_starts_a_new_session_and_drops_the_old_ones_content(
    client: FlaskClient, cashier: Cashier
):
    csrf_token(client)
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
    cookie_before = session_cookie(client)

    assert sign_in(client, cashier.username).status_code == 302

    assert session_cookie(client) != cookie_before
    with client.session_transaction() as after:
        assert "planted" not in after
        assert set(after) <= {"staff_account_id", "store_id", "csrf_token", "_permanent"}


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.com",
        "//evil.com",
        "///till/x",
        "/\\evil.com",
        "/api/v1/members",
        "/till/../x",
    ],
)
def test_next_only_leads_within_the_till(client: FlaskClient, cashier: Cashier, target: str):
    answer = client.post(
        "/till/sign-in",
        query_string={"next": target},
        data={
            "username": cashier.username,
            "password": PASSWORD,
            "csrf_token": csrf_token(client),
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/"


def test_next_within_the_till_is_followed(client: FlaskClient, cashier: Cashier):
    first = client.get("/till/")
    assert first.headers["Location"] == "/till/sign-in?next=/till/"
    answer = sign_in(client, cashier.username, query="?next=/till/?from=start")
    assert answer.headers["Location"] == "/till/?from=start"


@pytest.mark.parametrize("role", [StaffRole.MARKETER, StaffRole.ADMIN])
def test_a_marketer_or_an_admin_is_refused_the_till(
    client: FlaskClient, session: Session, clock: FixedClock, role: StaffRole
):
    username = make_account(session, clock, role, None)
    answer = sign_in(client, username)
    assert answer.status_code == 403
    assert "cannot use the till" in text_of(answer)
    assert client.get("/till/").status_code == 302


def test_after_too_many_failures_even_the_right_password_waits(
    app: Flask, client: FlaskClient, cashier: Cashier
):
    shared = app.extensions["loyalty.shared"]
    app.extensions["loyalty.failure_budget"] = FailureBudget(shared, per_minute=3)
    answers = [sign_in(client, cashier.username, "not the password at all") for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [401, 401, 401]
    assert answers[3].status_code == 429

    right = sign_in(client, cashier.username)
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in text_of(right)
    assert client.get("/till/").status_code == 302


def test_signing_out_ends_the_session(client: FlaskClient, cashier: Cashier):
    sign_in(client, cashier.username)
    token = csrf_token(client, "/till/")
    answer = client.post("/till/sign-out", data={"csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/sign-in"
    again = client.get("/till/")
    assert again.status_code == 302
    assert again.headers["Location"].startswith("/till/sign-in")


def test_a_disabled_accounts_session_stops_at_the_next_request(
    client: FlaskClient, session: Session, clock: FixedClock, cashier: Cashier
):
    sign_in(client, cashier.username)
    assert client.get("/till/").status_code == 200

    disable_account(session, username=cashier.username, actor="test", now=clock.now())
    session.flush()

    answer = client.get("/till/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/till/sign-in")
    with client.session_transaction() as after:
        assert "staff_account_id" not in after


def test_the_session_cookie_is_http_only_same_site_and_lasts_twelve_hours(
    client: FlaskClient, cashier: Cashier
):
    answer = sign_in(client, cashier.username)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Expires=" in cookie
    assert "Secure" not in cookie  # tests run over plain http; production sets it


def test_the_pages_cannot_be_framed_and_carry_no_inline_script_or_style(
    client: FlaskClient, cashier: Cashier
):
    pages = [client.get("/till/sign-in"), sign_in(client, "nobody-here")]
    sign_in(client, cashier.username)
    pages.append(client.get("/till/"))
    for page in pages:
        assert page.mimetype == "text/html"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        html = text_of(page)
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        assert "<style" not in html
        assert "style=" not in html


def test_outside_development_the_session_cookie_is_secure(database_url: str, own_app):
    production = own_app(app_settings(database_url, LOYALTY_ENV="production"))
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["WTF_CSRF_ENABLED"] is True


def test_a_browser_asking_for_a_language_without_a_catalogue_gets_english(client: FlaskClient):
    page = client.get("/till/sign-in", headers={"Accept-Language": "de, fr;q=0.8"})
    assert page.status_code == 200
    assert '<html lang="en">' in text_of(page)
    assert "Sign in to the till" in text_of(page)
