"""Staff accounts: the people who sign in to the pages with a username and a password.

- Roles: cashiers and store managers belong to one store and work its tills; marketers and
  admins belong to no store and never work a till ("tills are for store staff").
- Usernames have 3 to 40 characters among lowercase letters, digits, `.`, `_` and `-`; they are
  stored lower-cased, so `Anna` and `anna` are one account.
- Passwords have 12 to 256 characters, nothing more is asked of them; only an argon2id hash
  (argon2-cffi's defaults) is kept, and a sign-in with an older cost rehashes it.
- A sign-in is refused with one message whether the username is unknown, the password wrong or
  the account disabled, and an unknown username costs a hash check too (against a dummy hash),
  so neither the answer nor its time tells which usernames exist.
- Nothing here counts failures: the caller (the sign-in page) must budget failed sign-ins per
  username and per address with the failed look-up budget (server/core/limits.py) before it
  calls `sign_in`.

`stores` sits beside this package (neither imports the other), so stores are read here
through a lightweight table of the two columns needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import column, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.db import unique_violation
from loyalty.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalty.staff.models import StaffAccount, StaffRole

USERNAME = re.compile(r"[a-z0-9._-]{3,40}")
PASSWORD_MIN = 12
PASSWORD_MAX = 256
STORE_ROLES = frozenset({StaffRole.CASHIER, StaffRole.STORE_MANAGER})
REFUSED = "the username or the password is wrong"

_hasher = PasswordHasher()
_stores = table("stores", column("id"), column("code"))


class SignInRefused(DomainError):
    """Unknown username, wrong password or disabled account: one error, one message."""

    title = "Sign-in refused"


@dataclass(frozen=True)
class SignedIn:
    """Who a page's session belongs to."""

    account_id: int
    username: str
    role: StaffRole
    store_id: int | None

    @property
    def actor(self) -> str:
        return f"staff-account:{self.account_id}:{self.username}"


@dataclass(frozen=True)
class StaffAccountInfo:
    """An account as the operator lists it: never its password hash."""

    id: int
    username: str
    role: StaffRole
    store_id: int | None
    store_code: str | None
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None


class HasRoleAndStore(Protocol):
    @property
    def role(self) -> StaffRole: ...

    @property
    def store_id(self) -> int | None: ...


def may_act_on_store(account: HasRoleAndStore, store_id: int) -> bool:
    """Whether the account may work a till of this store: cashiers and store managers at their
    own store only; marketers and admins at none, since tills are for store staff."""
    return account.role in STORE_ROLES and account.store_id == store_id


def normalised_username(username: str) -> str:
    return username.strip().lower()


def find_store_id(session: Session, code: str) -> int:
    store_id = session.scalar(select(_stores.c.id).where(_stores.c.code == code.strip()))
    if store_id is None:
        raise NotFound(f"no store has code {code!r}", field="store")
    return int(store_id)


def create_account(
    session: Session,
    *,
    username: str,
    password: str,
    role: StaffRole | str,
    store_id: int | None,
    actor: str,
    now: datetime,
) -> StaffAccountInfo:
    username = _valid_username(username)
    _check_password(password)
    staff_role = _valid_role(role)
    _check_store(session, staff_role, store_id)
    account = StaffAccount(
        username=username,
        password_hash=_hasher.hash(password),
        role=staff_role.value,
        store_id=store_id,
        created_at=now,
    )
    _insert(session, account)
    record(
        session,
        actor=actor,
        action="staff_account.create",
        subject_type="staff_account",
        subject_id=account.id,
        now=now,
        username=username,
        role=staff_role.value,
        store_id=store_id,
    )
    return _info(session, account)


def sign_in(session: Session, username: str, password: str, *, now: datetime) -> SignedIn:
    """The account behind a right username and password; `SignInRefused` otherwise."""
    if len(password) > PASSWORD_MAX:  # no account has one: refused without hashing a megabyte
        raise SignInRefused(REFUSED)
    account = session.scalars(
        select(StaffAccount).where(StaffAccount.username == normalised_username(username))
    ).first()
    matches = _verify(_dummy_hash() if account is None else account.password_hash, password)
    if account is None or not matches or account.disabled_at is not None:
        raise SignInRefused(REFUSED)
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.last_sign_in_at = now
    return _signed_in(account)


def signed_in_account(session: Session, account_id: int) -> SignedIn | None:
    """The account of a page's session, read again on each request: None once it is disabled,
    so disabling an account ends its sessions, and a changed role or store counts at once."""
    account = session.get(StaffAccount, account_id)
    if account is None or account.disabled_at is not None:
        return None
    return _signed_in(account)


def disable_account(
    session: Session, *, username: str, actor: str, now: datetime
) -> StaffAccountInfo:
    """The account can no longer sign in; disabling it again changes nothing."""
    account = _find(session, username)
    if account.disabled_at is None:
        account.disabled_at = now
        record(
            session,
            actor=actor,
            action="staff_account.disable",
            subject_type="staff_account",
            subject_id=account.id,
            now=now,
            username=account.username,
        )
    return _info(session, account)


def change_role(
    session: Session,
    *,
    username: str,
    role: StaffRole | str,
    store_id: int | None,
    actor: str,
    now: datetime,
) -> StaffAccountInfo:
    account = _find(session, username)
    staff_role = _valid_role(role)
    _check_store(session, staff_role, store_id)
    before = {"role": account.role, "store_id": account.store_id}
    account.role, account.store_id = staff_role.value, store_id
    record(
        session,
        actor=actor,
        action="staff_account.change_role",
        subject_type="staff_account",
        subject_id=account.id,
        now=now,
        username=account.username,
        before=before,
        after={"role": staff_role.value, "store_id": store_id},
    )
    return _info(session, account)


def list_accounts(session: Session) -> list[StaffAccountInfo]:
    rows = session.execute(
        select(StaffAccount, _stores.c.code)
        .outerjoin(_stores, _stores.c.id == StaffAccount.store_id)
        .order_by(StaffAccount.username)
    )
    return [_info_of(account, code) for account, code in rows]


def _valid_username(username: str) -> str:
    username = normalised_username(username)
    if USERNAME.fullmatch(username) is None:
        raise InvalidInput(
            "a username has 3 to 40 characters: letters, digits, '.', '_' or '-'",
            field="username",
        )
    return username


def _check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(
            f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )


def _valid_role(role: StaffRole | str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError:
        raise InvalidInput(
            f"a role is one of: {', '.join(r.value for r in StaffRole)}", field="role"
        ) from None


def _check_store(session: Session, role: StaffRole, store_id: int | None) -> None:
    if role in STORE_ROLES and store_id is None:
        raise InvalidInput(f"a {role.value} belongs to a store", field="store_id")
    if role not in STORE_ROLES and store_id is not None:
        raise InvalidInput(f"a {role.value} belongs to no store", field="store_id")
    if store_id is not None and _store_code(session, store_id) is None:
        raise NotFound(f"no store has id {store_id}", field="store_id")


def _store_code(session: Session, store_id: int | None) -> str | None:
    if store_id is None:
        return None
    return session.scalar(select(_stores.c.code).where(_stores.c.id == store_id))


def _insert(session: Session, account: StaffAccount) -> None:
    """Two operators creating one username at once: the unique index decides, the loser gets
    the same 409 as a plain duplicate."""
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError as exc:
        violation = unique_violation(exc)
        if violation is None or violation.table != StaffAccount.__tablename__:
            raise
        raise Conflict(
            f"a staff account with username {account.username!r} exists already",
            field="username",
        ) from None


def _find(session: Session, username: str) -> StaffAccount:
    name = normalised_username(username)
    account = session.scalars(select(StaffAccount).where(StaffAccount.username == name)).first()
    if account is None:
        raise NotFound(f"no staff account has username {name!r}", field="username")
    return account


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not anyone's password, only something to check against")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _signed_in(account: StaffAccount) -> SignedIn:
    return SignedIn(account.id, account.username, StaffRole(account.role), account.store_id)


def _info(session: Session, account: StaffAccount) -> StaffAccountInfo:
    return _info_of(account, _store_code(session, account.store_id))


def _info_of(account: StaffAccount, store_code: str | None) -> StaffAccountInfo:
    return StaffAccountInfo(
        id=account.id,
        username=account.username,
        role=StaffRole(account.role),
        store_id=account.store_id,
        store_code=store_code,
        created_at=account.created_at,
        disabled_at=account.disabled_at,
        last_sign_in_at=account.last_sign_in_at,
    )
