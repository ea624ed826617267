"""What every `loyalty` command shares: the clock, who is acting, one unit of work per command,
errors reported as one line (never a traceback), and plain tables and JSON files. Kept apart
from cli.py so that each area's own `commands.py` can use it; it imports nothing but the
shared kernel, so any area may."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.clock import SystemClock
from loyalty.db import make_engine, session_scope
from loyalty.errors import DomainError
from loyalty.settings import LookupKeys, load_settings

clock = SystemClock()

JSON_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


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
    return load_settings().lookup_keys


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from exc


def table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain columns, wide enough for their longest cell, for a terminal or a pipe."""
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    lines = [headings, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def refusal(label: str, exc: DomainError) -> str:
    """The refusal and a line per field message (a message that only repeats it is left out)."""
    lines = [f"{label}: {exc.detail}"]
    for field, messages in exc.errors.items():
        lines.extend(f"  {field}: {message}" for message in messages if message != exc.detail)
    return "\n".join(lines)


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
