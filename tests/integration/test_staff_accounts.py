"""Staff accounts on SQLite and PostgreSQL: who may sign in, with what, and at which store's
tills; and `loyalty create-staff-account`, `staff-accounts`, `disable-staff-account` as an
operator runs them (a database of the module's own: the commands commit)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.staff import accounts
from loyalty.staff.accounts import (
    REFUSED,
    SignInRefused,
    change_role,
    create_account,
    disable_account,
    list_accounts,
    may_act_on_store,
    sign_in,
    signed_in_account,
)
from loyalty.staff.models import StaffAccount, StaffRole
from loyalty.stores.models import Store
from loyalty.stores.services import create_store
from tests.cli import assert_clean_error, assert_ok, loyalty, migrated_database
from tests.conftest import START, unique

PASSWORD = "correct horse battery"


def _store(session: Session, clock: FixedClock) -> Store:
    return create_store(session, code=unique("S"), name="A store", actor="test", now=clock.now())


def _cashier(
    session: Session, clock: FixedClock, store: Store, username: str = "anna"
) -> accounts.StaffAccountInfo:
    return create_account(
        session,
        username=username,
        password=PASSWORD,
        role=StaffRole.CASHIER,
        store_id=store.id,
        actor="test",
        now=clock.now(),
    )


def _marketer(session: Session, clock: FixedClock) -> accounts.StaffAccountInfo:
    return create_account(
        session,
        username="mia",
        password=PASSWORD,
        role="marketer",
        store_id=None,
        actor="test",
        now=clock.now(),
    )


def _stored(session: Session, username: str) -> StaffAccount:
    return session.scalars(select(StaffAccount).where(StaffAccount.username == username)).one()


def test_the_right_password_signs_in_and_records_when(session: Session, clock: FixedClock) -> None:
    store = _store(session, clock)
    account = _cashier(session, clock, store)

    signed_in = sign_in(session, "anna", PASSWORD, now=clock.now())

    assert signed_in == accounts.SignedIn(account.id, "anna", StaffRole.CASHIER, store.id)
    assert _stored(session, "anna").last_sign_in_at == clock.now()


def test_a_wrong_password_is_refused_like_an_unknown_username(
    session: Session, clock: FixedClock
) -> None:
    _cashier(session, clock, _store(session, clock))

    with pytest.raises(SignInRefused) as wrong_password:
        sign_in(session, "anna", "correct horse battery!", now=clock.now())
    with pytest.raises(SignInRefused) as unknown_user:
        sign_in(session, "nobody", PASSWORD, now=clock.now())

    assert wrong_password.value.detail == unknown_user.value.detail == REFUSED
    assert _stored(session, "anna").last_sign_in_at is None


def test_an_unknown_username_costs_a_password_check_too(
    session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # timing is not measured in tests: what makes both answers take as long is this check
    checked: list[str] = []
    verify = accounts._verify

    def watched(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return verify(password_hash, password)

    monkeypatch.setattr(accounts, "_verify", watched)

    with pytest.raises(SignInRefused):
        sign_in(session, "nobody", PASSWORD, now=clock.now())

    assert len(checked) == 1
    assert checked[0].startswith("$argon2id$")


def test_only_an_argon2id_hash_is_kept_never_the_password(
    session: Session, clock: FixedClock
) -> None:
    _cashier(session, clock, _store(session, clock))

    stored = _stored(session, "anna").password_hash

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_hash_of_an_older_cost_is_replaced_at_the_next_sign_in(
    session: Session, clock: FixedClock
) -> None:
    _cashier(session, clock, _store(session, clock))
    cheap = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    _stored(session, "anna").password_hash = cheap

    sign_in(session, "anna", PASSWORD, now=clock.now())

    rehashed = _stored(session, "anna").password_hash
    assert rehashed != cheap
    assert not PasswordHasher().check_needs_rehash(rehashed)
    assert sign_in(session, "anna", PASSWORD, now=clock.now()).username == "anna"


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(
    session: Session, clock: FixedClock
) -> None:
    account = _cashier(session, clock, _store(session, clock))
    assert signed_in_account(session, account.id) is not None

    disabled = disable_account(session, username="ANNA", actor="test", now=clock.now())

    assert disabled.disabled_at == clock.now()
    with pytest.raises(SignInRefused) as refused:
        sign_in(session, "anna", PASSWORD, now=clock.now())
    assert refused.value.detail == REFUSED
    assert signed_in_account(session, account.id) is None


@pytest.mark.parametrize("role", ["cashier", "store_manager"])
def test_store_staff_without_a_store_are_refused(
    session: Session, clock: FixedClock, role: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_account(
            session,
            username="anna",
            password=PASSWORD,
            role=role,
            store_id=None,
            actor="test",
            now=clock.now(),
        )
    assert refused.value.field == "store_id"
    assert list_accounts(session) == []


@pytest.mark.parametrize("role", ["marketer", "admin"])
def test_marketers_and_admins_belong_to_no_store(
    session: Session, clock: FixedClock, role: str
) -> None:
    store = _store(session, clock)
    with pytest.raises(InvalidInput) as refused:
        create_account(
            session,
            username="mia",
            password=PASSWORD,
            role=role,
            store_id=store.id,
            actor="test",
            now=clock.now(),
        )
    assert refused.value.field == "store_id"


@pytest.mark.parametrize(
    ("field", "username", "password", "role"),
    [
        ("username", "an", PASSWORD, "cashier"),
        ("username", "anna k", PASSWORD, "cashier"),
        ("username", "a" * 41, PASSWORD, "cashier"),
        ("username", "anna@shop", PASSWORD, "cashier"),
        ("password", "anna", "eleven char", "cashier"),
        ("password", "anna", "x" * 257, "cashier"),
        ("role", "anna", PASSWORD, "owner"),
    ],
)
def test_bad_usernames_passwords_and_roles_are_refused_naming_the_field(
    session: Session, clock: FixedClock, field: str, username: str, password: str, role: str
) -> None:
    store = _store(session, clock)
    with pytest.raises(InvalidInput) as refused:
        create_account(
            session,
            username=username,
            password=password,
            role=role,
            store_id=store.id,
            actor="test",
            now=clock.now(),
        )
    assert refused.value.field == field


def test_an_unknown_store_is_refused(session: Session, clock: FixedClock) -> None:
    with pytest.raises(NotFound):
        create_account(
            session,
            username="anna",
            password=PASSWORD,
            role="cashier",
            store_id=999_999,
            actor="test",
            now=clock.now(),
        )


def test_usernames_are_case_insensitive_and_unique(session: Session, clock: FixedClock) -> None:
    store = _store(session, clock)
    created = _cashier(session, clock, store, username=" Anna.K ")
    assert created.username == "anna.k"
    assert sign_in(session, "ANNA.K", PASSWORD, now=clock.now()).account_id == created.id

    # no look-up before the insert: the unique index refuses, as it would a concurrent one
    with pytest.raises(Conflict) as duplicate:
        _cashier(session, clock, store, username="anna.K")

    assert duplicate.value.field == "username"
    assert [a.username for a in list_accounts(session)] == ["anna.k"]


def test_a_cashier_of_store_a_may_act_on_a_and_never_on_b(
    session: Session, clock: FixedClock
) -> None:
    store_a, store_b = _store(session, clock), _store(session, clock)
    _cashier(session, clock, store_a)
    cashier = sign_in(session, "anna", PASSWORD, now=clock.now())

    assert may_act_on_store(cashier, store_a.id)
    assert not may_act_on_store(cashier, store_b.id)


def test_marketers_and_admins_never_work_a_till(session: Session, clock: FixedClock) -> None:
    store = _store(session, clock)
    _marketer(session, clock)
    marketer = sign_in(session, "mia", PASSWORD, now=clock.now())

    assert not may_act_on_store(marketer, store.id)
    admin = change_role(
        session, username="mia", role="admin", store_id=None, actor="test", now=clock.now()
    )
    assert not may_act_on_store(admin, store.id)


def test_a_changed_role_counts_at_the_next_request(session: Session, clock: FixedClock) -> None:
    store = _store(session, clock)
    account = _marketer(session, clock)

    change_role(
        session,
        username="mia",
        role=StaffRole.STORE_MANAGER,
        store_id=store.id,
        actor="test",
        now=clock.now(),
    )

    now_signed_in = signed_in_account(session, account.id)
    assert now_signed_in is not None
    assert now_signed_in.role is StaffRole.STORE_MANAGER
    assert may_act_on_store(now_signed_in, store.id)


def test_creating_disabling_and_changing_a_role_are_audited_without_the_password(
    session: Session, clock: FixedClock
) -> None:
    store = _store(session, clock)
    account = _cashier(session, clock, store)
    change_role(
        session, username="anna", role="marketer", store_id=None, actor="admin:1", now=clock.now()
    )
    disable_account(session, username="anna", actor="admin:1", now=clock.now())
    password_hash = _stored(session, "anna").password_hash

    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == "staff_account")
        .where(AuditEntry.subject_id == str(account.id))
        .order_by(AuditEntry.id)
    ).all()

    assert [(e.action, e.actor) for e in entries] == [
        ("staff_account.create", "test"),
        ("staff_account.change_role", "admin:1"),
        ("staff_account.disable", "admin:1"),
    ]
    assert entries[0].details == {"username": "anna", "role": "cashier", "store_id": store.id}
    assert entries[1].details["before"] == {"role": "cashier", "store_id": store.id}
    assert entries[1].details["after"] == {"role": "marketer", "store_id": None}
    written = json.dumps([e.details for e in entries])
    assert PASSWORD not in written
    assert password_hash not in written


# The command line, on a database of the module's own.


@pytest.fixture(scope="module")
def url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(backend, tmp_path_factory, "staff_cli") as database_url:
        yield database_url


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_an_operator_creates_lists_and_disables_accounts(
    url: str, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = unique("CLI")
    assert_ok(loyalty(url, "create-store", store, "CLI store"))
    username = unique("till.").lower()

    created = loyalty(
        url,
        *("create-staff-account", username, "--role", "cashier", "--store", store),
        "--password-stdin",
        input=f"{PASSWORD}\n",
    )
    assert_ok(created)
    assert f"({username}): cashier at store {store}" in created.stdout

    listed = loyalty(url, "staff-accounts")
    assert_ok(listed)
    line = next(row for row in listed.stdout.splitlines() if username in row)
    assert line.split()[1:5] == [username, "cashier", store, "active"]
    with db.connect() as connection:
        stored = connection.scalar(
            select(StaffAccount.password_hash).where(StaffAccount.username == username)
        )
    assert stored is not None
    assert stored not in listed.stdout
    assert "$argon2" not in listed.stdout
    assert PASSWORD not in listed.stdout

    assert_ok(loyalty(url, "disable-staff-account", username.upper()))
    listed = loyalty(url, "staff-accounts")
    line = next(row for row in listed.stdout.splitlines() if username in row)
    assert "disabled" in line


def test_the_password_is_asked_twice_hidden(
    url: str, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = unique("mkt.").lower()

    created = loyalty(
        url,
        "create-staff-account",
        username,
        "--role",
        "marketer",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert_ok(created)
    assert PASSWORD not in created.output  # hidden as it is typed
    with Session(db) as session:
        signed_in = sign_in(session, username, PASSWORD, now=START)
    assert signed_in.role is StaffRole.MARKETER


def test_the_command_line_refuses_in_one_line(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    username = unique("x.").lower()
    create = ["create-staff-account", username, "--password-stdin"]

    no_store = loyalty(url, *create, "--role", "cashier", input=f"{PASSWORD}\n")
    assert_clean_error(no_store, "a cashier belongs to a store")
    short = loyalty(url, *create, "--role", "admin", input="short\n")
    assert_clean_error(short, "a password has 12 to 256 characters")
    unknown_store = loyalty(
        url, *create, "--role", "cashier", "--store", "NOWHERE", input=f"{PASSWORD}\n"
    )
    assert_clean_error(unknown_store, "no store has code 'NOWHERE'")

    assert_ok(loyalty(url, *create, "--role", "admin", input=f"{PASSWORD}\n"))
    create[1] = username.upper()
    again = loyalty(url, *create, "--role", "admin", input=f"{PASSWORD}\n")
    assert_clean_error(again, "exists already")

    assert_clean_error(loyalty(url, "disable-staff-account", "nobody.here"), "no staff account")
