"""Signing in to the member page with a code sent by email: what a member sees, what reaches
their mailbox (through a real SMTP server), and what a guesser, a forger of requests or
another member does not get."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from loyalty import migrate
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.members.models import Member, MemberSignInCode
from loyalty.members.services import set_blocked
from loyalty.members.sign_in import MAX_ATTEMPTS, code_hash
from loyalty.messaging.models import OutboxMessage
from loyalty.program import ensure_program
from loyalty.settings import LookupKeys, Settings
from server.core.limits import FailureBudget
from tests.conftest import (
    START,
    app_settings,
    drop_postgres_database,
    fresh_postgres_database,
)
from tests.factories import give_points, make_member
from tests.mail import Inbox
from tests.mail import smtp_server as running_smtp
from tests.web.test_till_sign_in import PASSWORD, csrf_token, make_account, text_of
from web.member import limits
from web.member.delivery import DELIVERY
from web.member.session import AWAITING, MEMBER

SENT = "we have sent a code to it"
WRONG = "This code is wrong or no longer valid."
SECRET = "test-secret"  # app_settings' secret key


@pytest.fixture
def deliveries(app: Flask) -> list[Settings]:
    """Each request's delivery, recorded instead of run: the app's requests share the test's
    rolled-back transaction, which a sender on its own connection would not see."""
    recorded: list[Settings] = []
    app.extensions[DELIVERY] = recorded.append
    return recorded


@pytest.fixture
def member(session: Session, keys: LookupKeys, clock: FixedClock) -> Member:
    found, _card = make_member(session, keys, clock, name="Ada Lovelace")
    give_points(session, found.id, 1_250, clock.now())
    return found


def ask_for_code(client: FlaskClient, email: str) -> TestResponse:
    token = csrf_token(client, "/me/sign-in")
    return client.post("/me/sign-in", data={"email": email, "csrf_token": token})


def send_code(client: FlaskClient, code: str) -> TestResponse:
    token = csrf_token(client, "/me/code")
    return client.post("/me/code", data={"code": code, "csrf_token": token})


def emailed_code(session: Session, email: str) -> str:
    """The code in the newest email queued to `email` (what the member reads)."""
    message = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == email)
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None
    return str(message.payload["code"])


def sign_in(client: FlaskClient, session: Session, email: str) -> TestResponse:
    assert ask_for_code(client, email).status_code == 302
    return send_code(client, emailed_code(session, email))


def test_a_member_signs_in_with_the_emailed_code_and_sees_their_points(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    asked = ask_for_code(client, str(member.email))
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/me/code"
    assert SENT in text_of(client.get("/me/code"))
    assert len(deliveries) == 1

    answer = send_code(client, emailed_code(session, str(member.email)))
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/me/"
    home = text_of(client.get("/me/"))
    assert "Ada Lovelace" in home
    assert "1,250" in home
    assert "Points pending" in home


def test_an_unknown_email_gets_the_same_page_and_no_mail(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = [ask_for_code(client, address) for address in (str(member.email), nobody)]
    assert [a.status_code for a in answers] == [302, 302]
    assert {a.headers["Location"] for a in answers} == {"/me/code"}
    page = text_of(client.get("/me/code"))
    assert SENT in page
    assert nobody in page
    assert len(deliveries) == 2  # the same path both times
    queued = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == nobody))
    assert queued.all() == []


def test_a_wrong_code_is_refused_with_one_message(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    ask_for_code(client, str(member.email))
    right = emailed_code(session, str(member.email))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answer = send_code(client, wrong)
    assert answer.status_code == 401
    assert text_of(answer).count(WRONG) == 1
    assert text_of(answer).count("member-error") == 1
    assert client.get("/me/").headers["Location"] == "/me/sign-in"


def test_a_used_code_cannot_be_used_again(
    client: FlaskClient, app: Flask, session: Session, member: Member, deliveries: list[Settings]
):
    email = str(member.email)
    ask_for_code(client, email)
    code = emailed_code(session, email)
    assert send_code(client, code).status_code == 302

    again = app.test_client()
    with again.session_transaction() as state:
        state[AWAITING] = email
    answer = send_code(again, code)
    assert answer.status_code == 401
    assert WRONG in text_of(answer)
    assert again.get("/me/").status_code == 302


def test_an_expired_code_is_refused(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    member: Member,
    deliveries: list[Settings],
):
    ask_for_code(client, str(member.email))
    code = emailed_code(session, str(member.email))
    clock.advance(timedelta(minutes=10))
    answer = send_code(client, code)
    assert answer.status_code == 401
    assert WRONG in text_of(answer)


def test_a_new_code_retires_the_one_before(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    ask_for_code(client, str(member.email))
    first = emailed_code(session, str(member.email))
    ask_for_code(client, str(member.email))
    second = emailed_code(session, str(member.email))
    if first != second:
        assert send_code(client, first).status_code == 401
    assert send_code(client, second).status_code == 302


def test_five_wrong_codes_kill_the_code(
    app: Flask,
    client: FlaskClient,
    session: Session,
    member: Member,
    deliveries: list[Settings],
):
    # a budget wide enough that only the code's own count of tries refuses
    app.extensions[limits.BUDGET] = FailureBudget(app.extensions["loyalty.shared"], 100)
    ask_for_code(client, str(member.email))
    right = emailed_code(session, str(member.email))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert [send_code(client, wrong).status_code for _ in range(MAX_ATTEMPTS)] == [401] * 5

    answer = send_code(client, right)
    assert answer.status_code == 401
    assert WRONG in text_of(answer)
    stored = session.scalars(
        select(MemberSignInCode).where(MemberSignInCode.member_id == member.id)
    ).one()
    session.refresh(stored)
    assert (stored.attempts, stored.used_at) == (MAX_ATTEMPTS, None)


def test_the_stored_code_is_only_a_keyed_hash(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    ask_for_code(client, str(member.email))
    code = emailed_code(session, str(member.email))
    stored = session.scalars(
        select(MemberSignInCode).where(MemberSignInCode.member_id == member.id)
    ).one()
    assert code not in stored.code_hash
    assert re.fullmatch(r"[0-9a-f]{64}", stored.code_hash)
    assert stored.code_hash == code_hash(SECRET, member.id, code)
    assert stored.code_hash != code_hash("another-secret", member.id, code)


def test_posts_without_the_csrf_token_are_refused(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    client.get("/me/sign-in")
    assert client.post("/me/sign-in", data={"email": str(member.email)}).status_code == 400
    assert deliveries == []
    sign_in(client, session, str(member.email))
    assert client.post("/me/sign-out").status_code == 400
    assert client.get("/me/").status_code == 200  # still signed in
    with client.session_transaction() as state:
        state[AWAITING] = str(member.email)
    assert client.post("/me/code", data={"code": "123456"}).status_code == 400


def test_a_member_sees_only_their_own_page(
    app: Flask,
    session: Session,
    keys: LookupKeys,
    clock: FixedClock,
    member: Member,
    deliveries: list[Settings],
):
    other, _card = make_member(session, keys, clock, name="Grace Hopper")
    first, second = app.test_client(), app.test_client()
    assert sign_in(first, session, str(member.email)).status_code == 302
    assert sign_in(second, session, str(other.email)).status_code == 302

    mine, theirs = text_of(first.get("/me/")), text_of(second.get("/me/"))
    assert "Ada Lovelace" in mine
    assert "Grace Hopper" not in mine
    assert "Grace Hopper" in theirs
    assert "Ada Lovelace" not in theirs
    # no id in any URL to change
    assert first.get(f"/me/{other.id}").status_code == 404
    assert "Grace Hopper" not in text_of(first.get(f"/me/?member_id={other.id}"))


def test_a_blocked_members_session_ends(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    member: Member,
    deliveries: list[Settings],
):
    sign_in(client, session, str(member.email))
    set_blocked(
        session, member_id=member.id, blocked=True, reason="test", actor="test", now=clock.now()
    )
    session.flush()
    assert client.get("/me/").headers["Location"] == "/me/sign-in"
    with client.session_transaction() as state:
        assert MEMBER not in state


def test_a_till_session_and_a_member_session_grant_each_other_nothing(
    client: FlaskClient,
    session: Session,
    clock: FixedClock,
    member: Member,
    deliveries: list[Settings],
):
    from loyalty.staff.models import StaffRole  # noqa: PLC0415 - only this test needs a cashier
    from tests.factories import make_till  # noqa: PLC0415

    store = make_till(session, clock).store
    username = make_account(session, clock, StaffRole.CASHIER, store.id)
    token = csrf_token(client)
    data = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert client.post("/till/sign-in", data=data).status_code == 302
    assert client.get("/me/").headers["Location"] == "/me/sign-in"

    sign_in(client, session, str(member.email))
    assert client.get("/me/").status_code == 200
    assert client.get("/till/").headers["Location"].startswith("/till/sign-in")
    with client.session_transaction() as state:
        assert set(state) <= {MEMBER, "csrf_token", "_permanent"}


def test_signing_in_starts_a_new_session_and_signing_out_ends_it(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    csrf_token(client, "/me/sign-in")
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
    sign_in(client, session, str(member.email))
    with client.session_transaction() as after:
        assert "planted" not in after

    token = csrf_token(client, "/me/")
    answer = client.post("/me/sign-out", data={"csrf_token": token})
    assert answer.headers["Location"] == "/me/sign-in"
    assert client.get("/me/").headers["Location"] == "/me/sign-in"


def test_too_many_requests_for_codes_wait(
    client: FlaskClient, member: Member, deliveries: list[Settings]
):
    answers = [ask_for_code(client, str(member.email)) for _ in range(limits.PER_MINUTE + 1)]
    assert [a.status_code for a in answers[:-1]] == [302] * limits.PER_MINUTE
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "Too many attempts" in text_of(answers[-1])
    assert len(deliveries) == limits.PER_MINUTE


def test_too_many_wrong_codes_wait_even_for_the_right_one(
    client: FlaskClient, session: Session, member: Member, deliveries: list[Settings]
):
    ask_for_code(client, str(member.email))
    right = emailed_code(session, str(member.email))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answers = [send_code(client, wrong) for _ in range(limits.PER_MINUTE + 1)]
    assert answers[-1].status_code == 429
    assert send_code(client, right).status_code == 429
    assert client.get("/me/").status_code == 302


# Through a real SMTP server: the app on a database of its own, committed, so that the
# send-outbox job (in a thread, on its own connection) sees the queued email.


@pytest.fixture(scope="module")
def committed_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('member') / 'loyalty.sqlite3'}"
    else:
        url = fresh_postgres_database(f"member_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ensure_program(session, START)
    engine.dispose()
    yield url
    if backend == "postgresql":
        drop_postgres_database(url)


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    with running_smtp() as served:
        yield served


def test_the_code_arrives_through_a_real_smtp_server(
    committed_url: str, smtp_server: tuple[str, Inbox], own_app: Any, keys: LookupKeys
):
    smtp_url, inbox = smtp_server
    settings = app_settings(
        committed_url, LOYALTY_SMTP_URL=smtp_url, LOYALTY_MAIL_FROM="club@shop.example"
    )
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    engine = make_engine(committed_url)
    with Session(engine) as session, session.begin():
        make_member(session, keys, FixedClock(START), name="Ada Byron", email=email)
    engine.dispose()
    client = own_app(settings).test_client()

    assert ask_for_code(client, email).status_code == 302
    mail = inbox.received(email)
    assert mail["From"] == "club@shop.example"
    body = mail.get_payload(decode=True).decode()
    found = re.search(r"\b(\d{6})\b", body)
    assert found is not None
    assert found.group(1) in mail["Subject"]

    assert send_code(client, found.group(1)).headers["Location"] == "/me/"
    home = client.get("/me/")
    assert home.status_code == 200
    assert "Ada Byron" in text_of(home)
