"""One declarative base for every model; engines that behave alike on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from loyalty.clock import as_utc
from loyalty.deadlines import Deadlines

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
# The largest id there can be: beyond it a database refuses even to compare.
MAX_ID = 2**63 - 1
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware, on either database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, _dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UTC column"
            raise ValueError(msg)
        return as_utc(value)

    def process_result_value(self, value: datetime | None, _dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def engine_options(url: str, deadlines: Deadlines | None = None) -> dict[str, Any]:
    """`create_engine`'s options. With `deadlines` (the web app's engine), PostgreSQL calls
    give up in seconds (loyalty.deadlines), and so does waiting for a pooled connection."""
    # hide_parameters: a failed statement's error (and so the log) never shows the values it
    # carried, which are often a member's email, phone or name.
    if is_sqlite(url):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    # No pool_pre_ping: it costs every request a round trip; loyalty.deadlines replaces a
    # connection the server closed when it is checked out, for the price of a select().
    # pool_recycle retires connections before server-side idle timeouts can cut them.
    options: dict[str, Any] = {
        "pool_size": 10,
        "max_overflow": 20,
        "pool_recycle": 1800,
        "hide_parameters": True,
    }
    if deadlines is not None:
        options |= {"connect_args": deadlines.connect_args(), "pool_timeout": deadlines.statement}
    return options


# RETURNING (3.35) and UPDATE … FROM (3.33): the ledger and the tier review rely on both.
MIN_SQLITE = (3, 35)


def check_sqlite_version(found: tuple[int, int, int]) -> None:
    if found < MIN_SQLITE:
        wanted = ".".join(map(str, MIN_SQLITE))
        raise RuntimeError(
            f"this Python's SQLite is {'.'.join(map(str, found))}; the embedded database needs "
            f"{wanted} or later (a newer Python build, or PostgreSQL via LOYALTY_DATABASE_URL)"
        )


def prepare_engine(engine: Engine) -> Engine:
    """Make SQLite transactional the way PostgreSQL is.

    pysqlite opens transactions lazily and cannot nest savepoints; taking over BEGIN fixes both,
    and BEGIN IMMEDIATE takes the write lock up front so two writers queue on busy_timeout
    instead of failing with "database is locked" when one upgrades a read lock.
    """
    if engine.dialect.name != "sqlite":
        return engine
    # the library the driver was built with (pysqlite: the stdlib's sqlite3)
    check_sqlite_version(getattr(engine.dialect.dbapi, "sqlite_version_info", (0, 0, 0)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return prepare_engine(create_engine(url, **engine_options(url)))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work for the CLI and jobs: commit on success, roll back on any error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# The INSERT that knows ON CONFLICT, per database: exactly-once sales, upserts, deduped outbox rows.
UPSERT_INSERT: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert_insert(dialect_name: str) -> Any:
    """`insert` with `on_conflict_do_nothing` / `on_conflict_do_update` for this database."""
    return UPSERT_INSERT[dialect_name]


@dataclass(frozen=True)
class UniqueViolation:
    """A row refused because another holds the same value: which table, which columns."""

    table: str
    columns: tuple[str, ...]


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def unique_violation(exc: IntegrityError) -> UniqueViolation | None:
    """What a unique constraint refused, on either database; None for any other integrity
    error. Two requests racing past a check (two enrolments with one email) end here."""
    orig = exc.orig
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    if getattr(orig, "sqlstate", None) == "23505" and constraint:  # PostgreSQL
        for table in Base.metadata.tables.values():
            uniques: list[UniqueConstraint | Index] = [
                c for c in table.constraints if isinstance(c, UniqueConstraint)
            ]
            uniques += [index for index in table.indexes if index.unique]
            for unique in uniques:
                if unique.name == constraint:
                    return UniqueViolation(table.name, tuple(c.name for c in unique.columns))
        return UniqueViolation("", ())
    found = _SQLITE_UNIQUE.search(str(orig))
    if found is None:
        return None
    columns = [part.strip().split(".") for part in found.group(1).split(",")]
    return UniqueViolation(columns[0][0], tuple(column for _table, column in columns))
