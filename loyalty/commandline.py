"""What every `loyalty` command shares: the clock, who is acting, one unit of work per command,
and errors reported as one line (never a traceback). Kept apart from cli.py so that each area's
own `commands.py` can use it."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.clock import SystemClock
from loyalty.db import make_engine, session_scope
from loyalty.errors import DomainError
from loyalty.members.services import LookupKeys
from loyalty.settings import load_settings

clock = SystemClock()


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry, no USER set
        user = "unknown"
    return f"cli:{user}"


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One unit of work on the configured database; the engine is closed afterwards."""
    engine = make_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def lookup_keys() -> LookupKeys:
    settings = load_settings()
    return LookupKeys(card_key=settings.card_key, phone_region=settings.phone_region)


class CommandGroup(click.Group):
    """Refusals of the domain, and a database that is missing or not migrated, are reported as
    one line and exit 1, like any other click error, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        except DBAPIError as exc:
            raise click.ClickException(_database_refused(exc)) from exc


def _database_refused(exc: DBAPIError) -> str:
    text = str(exc.orig).strip()
    reason = text.splitlines()[0] if text else type(exc.orig).__name__
    missing_table = "no such table" in reason or getattr(exc.orig, "sqlstate", None) == "42P01"
    hint = "; run `loyalty migrate` first" if missing_table else ""
    return f"the database refused: {reason}{hint}"
