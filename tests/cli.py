"""Running `loyalty …` in tests, as an operator's shell would, against a database of the test's
choosing. A traceback fails the test; a clean refusal exits non-zero with a reason."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner, Result

from loyalty.cli import main
from tests.conftest import CARD_KEY, drop_postgres_database, fresh_postgres_database

# What the commands write under the instance folder (the demo till's key) goes here, never into
# the checkout's own instance/.
INSTANCE = tempfile.mkdtemp(prefix="loyalty-cli-instance-")


def loyalty(url: str, *args: str, input: str | None = None, **environ: str) -> Result:  # noqa: A002 - click's name
    runner = CliRunner(
        env={
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_CARD_KEY": CARD_KEY,
            "LOYALTY_SECRET_KEY": "test-secret",
            "LOYALTY_PHONE_REGION": "GB",
            "LOYALTY_ENV": "development",
            "LOYALTY_REDIS_URL": "",
            "LOYALTY_INSTANCE_PATH": INSTANCE,
            **environ,
        }
    )
    return runner.invoke(main, list(args), input=input, catch_exceptions=False)


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"


def assert_clean_error(result: Result, *messages: str) -> None:
    """Exit 1, every message on stderr, and no traceback anywhere."""
    assert result.exit_code == 1, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    for message in messages:
        assert message in result.stderr
    assert "Traceback" not in result.output


@contextmanager
def migrated_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory, purpose: str
) -> Iterator[str]:
    """A database of a test module's own (the commands commit), migrated by `loyalty migrate`:
    a SQLite file, or a PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'loyalty.sqlite3'}"
        assert_ok(loyalty(database_url, "migrate"))
        yield database_url
        return
    database_url = fresh_postgres_database(f"{purpose}_{uuid.uuid4().hex[:8]}")
    try:
        assert_ok(loyalty(database_url, "migrate"))
        yield database_url
    finally:
        drop_postgres_database(database_url)
