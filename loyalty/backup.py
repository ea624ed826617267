"""An online backup of the embedded SQLite database: SQLite's own backup API copies a
consistent snapshot page by page while tills keep writing (each step holds the read lock only
briefly). PostgreSQL is backed up with its own tools (README, "Backups")."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from loyalty.db import is_sqlite

PAGES_PER_STEP = 1024


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
    pages = 0
    with sqlite3.connect(source_path) as source, sqlite3.connect(partial) as copy:

        def progress(_status: int, remaining: int, total: int) -> None:
            nonlocal pages
            pages = total - remaining

        source.backup(copy, pages=PAGES_PER_STEP, progress=progress)
        check = copy.execute("PRAGMA integrity_check").fetchone()
    if check != ("ok",):  # pragma: no cover - a copy made by SQLite itself
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the copy failed its integrity check: {check}")
    partial.replace(target)
    return Backup(target, pages)
