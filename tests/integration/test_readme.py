"""The README's walk-through, run as it is written (only the server's port differs) against a
server set up as `make run` sets one up: a fresh embedded database, migrated and seeded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from loyalty.settings import load_settings
from server.app import create_app
from server.core.extensions import db
from tests.cli import assert_ok, loyalty
from tests.conftest import project_root, unavailable

MAKE_RUN_ADDRESS = "http://127.0.0.1:5000"


def _walk_through() -> str:
    readme = (project_root() / "README.md").read_text()
    section = readme.split("## A walk through the till calls", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found, "the walk-through's shell block"
    return found.group(1)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[str]:
    """A server on a free port over a fresh, migrated and seeded instance in tmp_path."""
    instance = tmp_path / "instance"
    url = f"sqlite:///{instance / 'loyalty.sqlite3'}"
    environ = {"LOYALTY_INSTANCE_PATH": str(instance)}
    assert_ok(loyalty(url, "migrate", **environ))
    assert_ok(loyalty(url, "seed-demo", **environ))
    settings = load_settings(
        {
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_INSTANCE_PATH": str(instance),
            "LOYALTY_SECRET_KEY": "test-secret",
            "LOYALTY_CARD_KEY": "test-card-key",
        }
    )
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


def test_the_readme_walk_through_works_as_written_on_a_fresh_shop(
    shop: str, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        unavailable("curl is missing: the README's walk-through uses it")
    script = _walk_through()
    assert MAKE_RUN_ADDRESS in script
    done = subprocess.run(  # noqa: S603 - the README's own commands
        ["bash", "-euo", "pipefail", "-c", script.replace(MAKE_RUN_ADDRESS, shop)],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    identified, quote, sale, returned, voided, history = answers
    mary = json.loads((tmp_path / "mary.json").read_text())
    assert identified["member"]["id"] == mary["id"]
    assert quote["points"]["earned"] == sale["points"]["earned"] == 2
    assert (returned["sale_status"], voided["sale_status"]) == ("partially_returned", "voided")
    assert [entry["kind"] for entry in history["entries"]] == ["reverse", "reverse", "earn"]
    assert (tmp_path / "card.svg").read_text().startswith("<svg")
