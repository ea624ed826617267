"""Fixtures shared by every layer.

Every database test runs twice: on SQLite and on PostgreSQL. Each backend gets a fresh database
built by the Alembic migrations once per run; each test runs inside an outer transaction that
is rolled back, and code under test that commits only releases a savepoint. Before the
rollback, the ledger is checked: no test that writes points can leave it inconsistent.

PostgreSQL and Redis tests skip with the reason when those servers are not reachable; under
CI=true they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from loyalty import migrate
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.ledger.services import check_ledger
from loyalty.program import ensure_program
from loyalty.settings import LookupKeys, Settings, load_settings
from server.app import create_app
from server.core.extensions import db

# the race fixtures (race_url, race_engine, live_app) for every module that races tills
pytest_plugins = ["tests.races"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "LOYALTY_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("LOYALTY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CARD_KEY = "test-card-key"
START = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def unavailable(reason: str) -> None:
    """Skip on a developer's machine without the server; fail in CI, where it must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def fresh_postgres_database(purpose: str = "shared") -> str:
    """A new, empty database on the test server; `purpose` keeps each user's apart."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"loyalty_test_{purpose}_{_worker()}_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}")
    finally:
        admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_databases: dict[str, str] = {}


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this backend, shared by the whole run."""
    if backend in _databases:
        yield _databases[backend]
        return
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'loyalty.sqlite3'}"
    else:
        url = fresh_postgres_database()
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ensure_program(session, START)
    engine.dispose()
    _databases[backend] = url
    yield url
    if backend == "postgresql":
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[object]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session(connection: object) -> Iterator[Session]:
    session = Session(
        bind=connection,
        join_transaction_mode="create_savepoint",  # type: ignore[arg-type]
        expire_on_commit=False,
    )
    yield session
    session.flush()
    problems = check_ledger(session)
    session.close()
    assert problems == [], f"check-ledger after the test: {problems}"


@dataclass
class Statements:
    """The SQL statements sent while counting, as the driver received them."""

    sent: list[str] = field(default_factory=list)

    def reading(self, *tables: str) -> list[str]:
        """The SELECTs that read any of these tables."""
        return [
            s
            for s in self.sent
            if s.lstrip().upper().startswith("SELECT")
            and any(f" {table}" in s or f"{table}." in s for table in tables)
        ]

    def __len__(self) -> int:
        return len(self.sent)


@pytest.fixture
def count_queries(engine: Engine) -> Callable[[], AbstractContextManager[Statements]]:
    """`with count_queries() as statements:` records every statement the engine sends inside
    the block, so a test can catch N+1 queries and work done twice (indico's fixture)."""

    @contextmanager
    def counting() -> Iterator[Statements]:
        statements = Statements()

        def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.sent.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def keys() -> LookupKeys:
    return LookupKeys(card_key=CARD_KEY, phone_region="GB")


def app_settings(database_url: str, redis_url: str | None = None, **overrides: object) -> Settings:
    environ = {
        "LOYALTY_DATABASE_URL": database_url,
        "LOYALTY_SECRET_KEY": "test-secret",
        "LOYALTY_CARD_KEY": CARD_KEY,
        "LOYALTY_PHONE_REGION": "GB",
    }
    if redis_url:
        environ["LOYALTY_REDIS_URL"] = redis_url
    environ |= {k: str(v) for k, v in overrides.items()}
    return load_settings(environ)


@pytest.fixture
def app(
    database_url: str, clock: FixedClock, connection: object, session: Session
) -> Iterator[Flask]:
    """The app, its requests running on the test's connection (so they roll back with it)."""
    flask_app = create_app(
        app_settings(database_url), clock=clock, config_override={"TESTING": True}
    )
    original = db.session
    db.session = scoped_session(  # type: ignore[misc]
        sessionmaker(
            bind=connection,
            join_transaction_mode="create_savepoint",  # type: ignore[call-overload]
            expire_on_commit=False,
        )
    )
    yield flask_app
    db.session.remove()
    db.session = original  # type: ignore[misc]
    with flask_app.app_context():
        # what reached the app's own engine (/health asks it directly) is closed, not left
        # for the garbage collector
        db.engine.dispose()


@pytest.fixture
def own_app() -> Iterator[Callable[..., Flask]]:
    """Apps on engines of their own (not the test's connection), closed after the test."""
    made: list[Flask] = []

    def make(settings: Settings, **kwargs: Any) -> Flask:
        made.append(create_app(settings, **kwargs))
        return made[-1]

    yield make
    for flask_app in made:
        with flask_app.app_context():
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL; SQLite serialises every writer")


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    """A TCP port nothing listens on, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


SLOW_FOLDERS = ("browser", "packaging")
SLOW_MODULES = (
    "test_concurrency.py",
    "test_races.py",
    "test_coupon_races.py",
    "test_referral_races.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests, the packaging tests and the races on real connections are `slow`:
    `make test-quick` leaves them out; `make test` and CI run everything."""
    for item in items:
        folder = item.path.parent.name
        races = "postgres_only" in getattr(item, "fixturenames", ())
        if folder in SLOW_FOLDERS or item.path.name in SLOW_MODULES or races:
            item.add_marker(pytest.mark.slow)
