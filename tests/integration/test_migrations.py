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
from sqlalchemy import Engine, MetaData, Table, inspect, select

import loyalty.models  # noqa: F401 - registers every table on the metadata
from loyalty import migrate
from loyalty.checkout.results import SaleResult
from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.checkout.services import Basket, SaleRequest
from loyalty.clock import FixedClock
from loyalty.db import Base, make_engine, session_scope
from loyalty.idempotency import Idempotency, fingerprint
from loyalty.ledger.adjustments import adjust_points_once
from loyalty.members.models import ConsentEvent, Member
from loyalty.program import ensure_program
from loyalty.results import restored
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


def _old_rows(engine: Engine) -> dict[str, Any]:
    """What a database at revision 0006 holds, written as the code of then wrote it."""
    at = START
    request = SaleRequest(
        "old-1", at, Basket(lines=[BasketLine("TEA", 1, 500)], member_id=1, coupon_codes=["X1"])
    )
    old_result = {
        "member_id": 1,
        "currency": "EUR",
        "subtotal": 500,
        "discounts": [],
        "discount_total": 0,
        "total": 500,
        "points": {
            "earned": 5,
            "redeemed": 0,
            "reasons": [
                {"rule": "base", "rule_id": None, "kind": "spend", "points": 5, "description": "x"}
            ],
        },
        "coupons": [{"code": "X1", "applied": False, "reason": "no such coupon"}],
        "external_id": "old-1",
        "status": "completed",
        "balance": {"available": 5, "pending": 0},
        "tier": {"code": "GOLD", "name": "Gold", "rank": 1, "earn_multiplier_percent": 150},
        "tier_changed": True,
    }
    rows = {
        "stores": {"id": 1, "code": "OLD", "name": "Old shop", "created_at": at},
        "terminals": {
            "id": 1, "store_id": 1, "name": "Till", "key_id": "k", "key_hash": "h",
            "created_at": at, "revoked_at": None,
        },
        "members": {
            "id": 1, "name": "Ada", "email": "ada@example.com", "phone": None, "birthday": None,
            "email_consent_at": at, "sms_consent_at": None, "acquisition_source": None,
            "status": "active", "enrolled_store_id": 1, "created_at": at,
        },
        "tiers": {
            "id": 1, "code": "GOLD", "name": "Gold", "rank": 1, "threshold": 2_000,
            "earn_multiplier_percent": 150, "perks": "free coffee", "created_at": at,
            "updated_at": at,
        },
        "sales": {
            "id": 1, "store_id": 1, "terminal_id": 1, "external_id": "old-1",
            "request_hash": fingerprint(request), "member_id": 1, "card_id": None,
            "occurred_at": at, "recorded_at": at, "currency": "EUR", "subtotal": 500,
            "discount_total": 0, "total": 500, "kept_total": 500, "points_earned": 5,
            "points_redeemed": 0, "points_reversed": 0, "status": "completed",
            "result": old_result, "void_result": None,
        },
        "adjustment_requests": {
            "id": 1, "owner": "staff:1", "idempotency_key": "adj-1", "request_hash": "old",
            "member_id": 1, "created_at": at,
            "result": {
                "entry_id": 7, "member_id": 1, "points": 10, "reason": "goodwill",
                "before": {"available": 0, "pending": 0}, "after": {"available": 10, "pending": 0},
            },
        },
    }  # fmt: skip
    with engine.begin() as connection:
        for name, values in rows.items():
            table = Table(name, MetaData(), autoload_with=connection)
            connection.execute(table.insert().values(**values))
    return {"request": request}


def test_what_was_recorded_before_0007_replays_and_its_keys_and_consents_carry_over(empty_url):
    command.upgrade(migrate.alembic_config(empty_url), "0006")
    engine = make_engine(empty_url)
    old = _old_rows(engine)

    migrate.upgrade(empty_url)
    with session_scope(engine) as session:
        ensure_program(session, START)  # the program as the code now knows it

    with session_scope(engine) as session:
        sale = session.scalars(select(Sale)).one()
        replayed = restored(sale.result, SaleResult)
        assert replayed.tier is not None
        assert (replayed.tier.threshold, replayed.tier.perks) == (2_000, "free coffee")
        assert replayed.coupons[0].reason == "unknown"
        assert replayed.coupons[0].message == "no such coupon"
        member = session.get_one(Member, 1)
        assert member.updated_at == member.created_at
        events = session.scalars(select(ConsentEvent)).all()
        assert [(e.member_id, e.channel, e.granted, e.at) for e in events] == [
            (1, "email", True, START)
        ]
        retried = adjust_points_once(
            session,
            Idempotency("staff:1", "adj-1"),
            member_id=1,
            points=10,
            reason="  goodwill ",  # a retry that only differs in spaces is the same request
            actor="staff:1",
            now=START,
        )
        assert (retried.created, retried.result.entry_id) == (False, 7)
        assert old["request"].external_id == sale.external_id
    engine.dispose()
