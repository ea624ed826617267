"""Alembic environment: the URL comes from LOYALTY_DATABASE_URL (or the caller's config)."""

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import Connection

import loyalty.models  # noqa: F401 - registers every table on the metadata
from loyalty.db import Base, make_engine
from loyalty.settings import load_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the old one, which a table that others
    reference cannot survive with foreign keys enforced. Alembic's advice: turn enforcement off
    for the migration (a PRAGMA that only works outside a transaction, hence the driver's own
    connection), and check every reference before the migration commits (see _run)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    if driver is None:  # pragma: no cover - a pooled SQLite connection always has one
        raise RuntimeError("no SQLite connection to migrate")
    driver.execute("PRAGMA foreign_keys=OFF")
    if driver.execute("PRAGMA foreign_keys").fetchone() != (0,):  # ignored inside a transaction
        raise RuntimeError("migrate SQLite on a connection that has no transaction open")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _run(connection: Connection) -> None:
    with _foreign_keys_deferred(connection):
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:  # raising here rolls the migration back
                    raise RuntimeError(f"the migration broke references: {broken[:5]}")


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
