"""The app behind a real HTTP server (`make run`'s), as a till's HTTP library meets it: the
server does not name its version, and a body sent in chunks that grows past the limit is
refused with 413 before the app reads a truncated copy of it."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from loyalty.clock import SystemClock
from server.app import create_app
from server.core.extensions import db
from server.devserver import QuietRequestHandler
from tests.conftest import app_settings
from tests.factories import make_till


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[int, str]]:
    """(port, a till's key) of a threaded werkzeug server, with a 4 KiB body limit."""
    app = create_app(app_settings(database_url, LOYALTY_MAX_BODY_BYTES=4096))
    with app.app_context(), db.session() as session, session.begin():
        till = make_till(session, SystemClock())  # type: ignore[arg-type]
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, till.key
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


def _chunked(port: int, key: str, chunks: list[bytes]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "POST",
        "/api/v1/members",
        body=iter(chunks),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        encode_chunked=True,
    )
    return connection.getresponse()


def test_a_chunked_body_over_the_limit_is_refused_whole(served: tuple[int, str]) -> None:
    port, key = served
    name = b"A" * 3000
    chunks = [b'{"name": "', name, name, b'"}']

    answer = _chunked(port, key, chunks)

    assert answer.status == 413
    assert answer.getheader("Content-Type") == "application/problem+json"


def test_a_chunked_body_within_the_limit_is_read_whole(served: tuple[int, str]) -> None:
    port, key = served
    answer = _chunked(port, key, [b'{"name": ', b'"Chunky ', b'Chips"}'])
    assert answer.status == 201
    assert b'"Chunky Chips"' in answer.read()


def test_the_server_does_not_say_which_version_it_runs(served: tuple[int, str]) -> None:
    port, _key = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/health")
    answer = connection.getresponse()
    server = answer.getheader("Server") or ""
    assert server == "loyalty"
