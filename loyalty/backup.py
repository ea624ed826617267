"""An online backup of the embedded SQLite database: SQLite's own backup API copies a
consistent snapshot while tills keep writing. PostgreSQL is backed up with its own tools
(README, "Backups")."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from loyalty.db import is_sqlite


class NotSqlite(ValueError):
    pass


@dataclass(frozen=True)
class Backup:
    path: Path
    pages: int


def backup_sqlite(database_url: str, target: Path) -> Backup:
    """Copy the SQLite database at `database_url` to `target` (written beside it first, and
    renamed when complete, so a half-written file never has the target's name)."""
    if not is_sqlite(database_url):
        raise NotSqlite("the database is not SQLite")
    source_path = make_url(database_url).database
    if not source_path or source_path == ":memory:":
        raise NotSqlite("an in-memory database has nothing to back up")
    if not Path(source_path).is_file():
        raise FileNotFoundError(f"no database at {source_path}")
    partial = target.with_name(f"{target.name}.partial")
    partial.unlink(missing_ok=True)
    # In one step: a copy made in steps starts again whenever a till writes meanwhile, and on a
    # busy shop might never end. In WAL mode (loyalty/db.py) the step's read transaction does
    # not stop the tills from writing.
    with closing(sqlite3.connect(source_path)) as source, closing(sqlite3.connect(partial)) as copy:
        source.backup(copy, pages=-1)
        check = copy.execute("PRAGMA integrity_check").fetchone()
        pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
    if check != ("ok",):  # pragma: no cover - a copy made by SQLite itself
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the copy failed its integrity check: {check}")
    partial.replace(target)
    return Backup(target, pages)
