"""The migrations, on SQLite and PostgreSQL: they build exactly the schema the models describe,
and a migration that adds a derived column fills it in for the rows already there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

import loyalty.models  # noqa: F401 - registers every table on the metadata
from loyalty import migrate
from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.clock import FixedClock
from loyalty.db import Base, make_engine, session_scope
from loyalty.program import ensure_program
from loyalty.rules.pricing import BasketLine
from loyalty.sales.models import Sale
from loyalty.settings import LookupKeys
from tests.conftest import CARD_KEY, START, drop_postgres_database, fresh_postgres_database
from tests.factories import give_points, make_member, make_till, sell


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    url = fresh_postgres_database("migrations")
    yield url
    drop_postgres_database(url)


def _bare(sql: str) -> str:
    """SQL as databases give it back, compared without PostgreSQL's casts of literals,
    brackets and spaces: `(status)::text <> 'erased'::text` is `status<>'erased'`."""
    return re.sub(r"::(character varying|[a-z]+)|[()\s]+", "", sql.lower())


def _predicate(engine: Engine, table: str, index: str) -> str:
    """An index's WHERE as the database keeps it."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
            ).scalar_one()
        return _bare(sql.split(" WHERE ", 1)[1])
    found = {i["name"]: i for i in inspect(engine).get_indexes(table)}
    return _bare(found[index]["dialect_options"]["postgresql_where"])


def _same_default(
    _context: Any,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected: str | None,
    _metadata: Any,
    rendered: str | None,
) -> bool | None:
    """Equal once bare and unquoted (SQLite gives '' back as ('')); else Alembic decides."""
    if inspected is None or rendered is None:
        return None
    return False if _bare(inspected).strip("'") == _bare(rendered).strip("'") else None


def test_the_migrations_build_exactly_what_the_models_describe(empty_url):
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_server_default": _same_default}
        )
        differences = compare_metadata(context, Base.metadata)
    # Alembic compares no partial-index predicates: compare each one here.
    partial = [
        (table.name, index.name, index.dialect_options[engine.dialect.name]["where"])
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[engine.dialect.name]["where"] is not None
    ]
    predicates = {
        name: (_predicate(engine, table, str(name)), _bare(str(where)))
        for table, name, where in partial
    }
    engine.dispose()
    assert differences == []
    assert partial, "the models have partial indexes; this test must see them"
    assert all(kept == modelled for kept, modelled in predicates.values()), predicates


def test_kept_total_is_filled_in_for_sales_recorded_before_it_existed(empty_url):
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    clock, keys = FixedClock(START), LookupKeys(card_key=CARD_KEY, phone_region="GB")
    with session_scope(engine) as session:
        ensure_program(session, START)
        till = make_till(session, clock)
        member, _ = make_member(session, keys, clock)
        give_points(session, member.id, 10_000, clock.now())
        lines = [BasketLine("KEPT", 3, 10_000), BasketLine("GONE", 1, 999)]
        sell(session, till, keys, clock, member=member, lines=lines, redeem=500, external_id="a")
        sell(session, till, keys, clock, member=member, lines=lines[1:], external_id="b")
        for sale, returned in (("a", [("KEPT", 1), ("GONE", 1)]), ("b", [("GONE", 1)])):
            record_return(
                session,
                terminal=till.terminal,
                sale_external_id=sale,
                request=ReturnRequest(f"r-{sale}", returned),
                now=clock.now(),
            )
    with session_scope(engine) as session:
        computed = dict(session.execute(select(Sale.external_id, Sale.kept_total)).all())
    assert computed["b"] == 0
    assert 0 < computed["a"] < 20_000

    command.downgrade(migrate.alembic_config(empty_url), "0003")
    migrate.upgrade(empty_url)

    with session_scope(engine) as session:
        backfilled = dict(session.execute(select(Sale.external_id, Sale.kept_total)).all())
    engine.dispose()
    assert backfilled == computed
