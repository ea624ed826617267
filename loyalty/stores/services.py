from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.db import MAX_ID
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.keys import find_key, new_key
from loyalty.stores.models import Store, Terminal

KEY_PREFIX = "lt"


STORE_CODE_MAX = 40
STORE_NAME_MAX = 120


def create_store(session: Session, *, code: str, name: str, actor: str, now: datetime) -> Store:
    code, name = code.strip(), name.strip()
    if not 1 <= len(code) <= STORE_CODE_MAX or not code.isprintable():
        raise InvalidInput(f"a store code has 1 to {STORE_CODE_MAX} characters", field="code")
    if not 1 <= len(name) <= STORE_NAME_MAX:
        raise InvalidInput(f"a store name has 1 to {STORE_NAME_MAX} characters", field="name")
    if session.scalars(select(Store).where(Store.code == code)).first() is not None:
        raise Conflict(f"a store with code {code!r} exists already", field="code")
    store = Store(code=code, name=name, created_at=now)
    session.add(store)
    session.flush()
    record(
        session,
        actor=actor,
        action="store.create",
        subject_type="store",
        subject_id=store.id,
        now=now,
        code=code,
        name=name,
    )
    return store


def find_store(session: Session, code: str) -> Store:
    store = session.scalars(select(Store).where(Store.code == code)).first()
    if store is None:
        raise NotFound(f"no store has code {code!r}", field="store")
    return store


def create_terminal(
    session: Session, *, store: Store, name: str, actor: str, now: datetime
) -> tuple[Terminal, str]:
    """Returns the terminal and its API key, which is not kept and cannot be shown again."""
    key = new_key(KEY_PREFIX)
    terminal = Terminal(
        store_id=store.id, name=name, key_id=key.key_id, key_hash=key.secret_hash, created_at=now
    )
    session.add(terminal)
    session.flush()
    record(
        session,
        actor=actor,
        action="terminal.create",
        subject_type="terminal",
        subject_id=terminal.id,
        now=now,
        store_id=store.id,
        name=name,
    )
    return terminal, key.plaintext


@dataclass(frozen=True)
class TerminalRef:
    """Who is calling: all a till request needs of its terminal, read in one small query."""

    id: int
    store_id: int
    store_code: str

    @property
    def actor(self) -> str:
        return f"terminal:{self.id}"


_TERMINAL_BY_KEY_ID = (
    select(
        Terminal.id,
        Terminal.store_id,
        Store.code,
        Terminal.key_hash,
        Terminal.previous_key_hash,
        Terminal.previous_key_valid_until,
    )
    .join(Store, Store.id == Terminal.store_id)
    .where(Terminal.key_id == bindparam("key_id"), Terminal.revoked_at.is_(None))
)


def authenticate_terminal(
    session: Session, api_key: str, now: datetime | None = None
) -> TerminalRef | None:
    """The terminal this key opens: its current key, or the one it replaced while the grace
    period of a rotation lasts (`now`, the wall clock when not given)."""
    row = find_key(session, KEY_PREFIX, _TERMINAL_BY_KEY_ID, api_key, now or datetime.now(UTC))
    if row is None:
        return None
    return TerminalRef(id=row.id, store_id=row.store_id, store_code=row.code)


MAX_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class TerminalInfo:
    """A till as the operator lists it: never its key."""

    id: int
    store_code: str
    name: str
    created_at: datetime
    rotated_at: datetime | None
    previous_key_valid_until: datetime | None
    revoked_at: datetime | None


def _info(terminal: Terminal) -> TerminalInfo:
    return TerminalInfo(
        id=terminal.id,
        store_code=terminal.store.code,
        name=terminal.name,
        created_at=terminal.created_at,
        rotated_at=terminal.rotated_at,
        previous_key_valid_until=terminal.previous_key_valid_until,
        revoked_at=terminal.revoked_at,
    )


@dataclass(frozen=True)
class RotatedKey:
    terminal: TerminalInfo
    key: str  # shown this once


def list_terminals(session: Session) -> list[TerminalInfo]:
    """Every till, by store and name (the batch-import terminals too: they are never opened)."""
    terminals = session.scalars(
        select(Terminal).join(Store).order_by(Store.code, Terminal.name, Terminal.id)
    )
    return [_info(terminal) for terminal in terminals]


def get_terminal(session: Session, terminal_id: int) -> Terminal:
    terminal = session.get(Terminal, terminal_id) if 0 < terminal_id <= MAX_ID else None
    if terminal is None:
        raise NotFound(f"no terminal has id {terminal_id}", field="terminal")
    return terminal


def revoke_terminal(
    session: Session, *, terminal: Terminal, actor: str, now: datetime
) -> TerminalInfo:
    """Stop a till at once: its key, and the key a rotation left working for a while."""
    terminal.revoked_at = now
    terminal.previous_key_hash = None
    terminal.previous_key_valid_until = None
    record(
        session,
        actor=actor,
        action="terminal.revoke",
        subject_type="terminal",
        subject_id=terminal.id,
        now=now,
    )
    return _info(terminal)


def rotate_key(
    session: Session,
    *,
    terminal: Terminal,
    actor: str,
    now: datetime,
    grace: timedelta = timedelta(0),
) -> str:
    """A new key for a terminal. The old one keeps working for `grace` (up to a week, while
    the new key is put in the till), then stops; without grace it stops at once. A revoked
    terminal comes back with the new key only."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput("the grace period is from 0 to 7 days", field="grace_minutes")
    key = new_key(KEY_PREFIX, key_id=terminal.key_id)
    keep_old = grace > timedelta(0) and terminal.revoked_at is None
    terminal.previous_key_hash = terminal.key_hash if keep_old else None
    terminal.previous_key_valid_until = now + grace if keep_old else None
    terminal.key_hash = key.secret_hash
    terminal.revoked_at = None
    terminal.rotated_at = now
    record(
        session,
        actor=actor,
        action="terminal.rotate_key",
        subject_type="terminal",
        subject_id=terminal.id,
        now=now,
        grace_seconds=int(grace.total_seconds()),
    )
    return key.plaintext


def rotate_terminal_key(
    session: Session, *, terminal_id: int, grace: timedelta, actor: str, now: datetime
) -> RotatedKey:
    """`rotate_key` for the terminal with this id: the new key, shown this once."""
    terminal = get_terminal(session, terminal_id)
    key = rotate_key(session, terminal=terminal, actor=actor, now=now, grace=grace)
    return RotatedKey(_info(terminal), key)


def revoke_terminal_by_id(
    session: Session, *, terminal_id: int, actor: str, now: datetime
) -> TerminalInfo:
    return revoke_terminal(
        session, terminal=get_terminal(session, terminal_id), actor=actor, now=now
    )


BATCH_TERMINAL_NAME = "batch import"


def batch_terminal(session: Session, *, store: Store, actor: str, now: datetime) -> Terminal:
    """The terminal that imported sales are recorded under; its key is never shown."""
    terminal = session.scalars(
        select(Terminal).where(Terminal.store_id == store.id, Terminal.name == BATCH_TERMINAL_NAME)
    ).first()
    if terminal is None:
        terminal, _key = create_terminal(
            session, store=store, name=BATCH_TERMINAL_NAME, actor=actor, now=now
        )
        revoke_terminal(session, terminal=terminal, actor=actor, now=now)
    return terminal
