from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty.audit.services import record
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
    select(Terminal.id, Terminal.store_id, Store.code, Terminal.key_hash)
    .join(Store, Store.id == Terminal.store_id)
    .where(Terminal.key_id == bindparam("key_id"), Terminal.revoked_at.is_(None))
)


def authenticate_terminal(session: Session, api_key: str) -> TerminalRef | None:
    row = find_key(session, KEY_PREFIX, _TERMINAL_BY_KEY_ID, api_key)
    if row is None:
        return None
    return TerminalRef(id=row.id, store_id=row.store_id, store_code=row.code)


def revoke_terminal(session: Session, *, terminal: Terminal, actor: str, now: datetime) -> None:
    terminal.revoked_at = now
    record(
        session,
        actor=actor,
        action="terminal.revoke",
        subject_type="terminal",
        subject_id=terminal.id,
        now=now,
    )


def rotate_key(session: Session, *, terminal: Terminal, actor: str, now: datetime) -> str:
    """A new key for a terminal; the old one stops working at once."""
    key = new_key(KEY_PREFIX, key_id=terminal.key_id)
    terminal.key_hash = key.secret_hash
    terminal.revoked_at = None
    record(
        session,
        actor=actor,
        action="terminal.rotate_key",
        subject_type="terminal",
        subject_id=terminal.id,
        now=now,
    )
    return key.plaintext


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
