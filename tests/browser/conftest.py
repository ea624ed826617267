"""Fixtures for the browser tests: the real app served on loopback, and headless Chromium.

The app runs in a background thread (werkzeug's `make_server` on 127.0.0.1, a free port) on a
fresh, migrated SQLite file: these tests check pages, not the database, so they run once, not
per backend. Chromium is Debian's (/usr/bin/chromium), driven by Playwright, which never
downloads a browser of its own here. Without either, the tests skip with the reason; under
CI=true they fail instead (`unavailable()`).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from loyalty import migrate
from loyalty.db import make_engine
from loyalty.program import ensure_program
from server.app import create_app
from server.core.extensions import db
from tests.conftest import START, app_settings, unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces: no host name resolves, so nothing but a loopback address is reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
NON_NETWORK_SCHEMES = {"data", "blob", "about"}
TIMEOUT_MS = 15_000


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in NON_NETWORK_SCHEMES or parts.hostname in LOOPBACK_HOSTS


@dataclass
class PageLog:
    """Everything a page did that a test asserts on: its requests and what went wrong."""

    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_request_failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "assert"}:
            self.problems.append(f"console {message.type}: {message.text} at {message.location}")

    def on_page_error(self, error: Exception) -> None:
        self.problems.append(f"page error: {error}")

    def off_machine(self) -> list[str]:
        return [url for url in self.requests if not is_loopback(url)]


@dataclass
class LoggedPage:
    page: Page
    log: PageLog


@pytest.fixture(scope="session")
def browser_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite file, migrated and with the programme, for the served app."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'loyalty.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ensure_program(session, START)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def live_server(browser_database_url: str) -> Iterator[str]:
    """The real app on 127.0.0.1 and a free port; yields its base URL (no trailing slash)."""
    app = create_app(app_settings(browser_database_url))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Debian Chromium on a fresh profile; only loopback requests are let through."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        unavailable("the playwright package is missing (pip install playwright)")

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        context.set_default_timeout(TIMEOUT_MS)
        # Anything off this machine is refused before it leaves; the page log still records it.
        context.route(
            lambda url: not is_loopback(url), lambda route: route.abort("blockedbyclient")
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def logged_page(browser_context: BrowserContext) -> Iterator[LoggedPage]:
    """A new tab that records its requests, failures and console errors."""
    page = browser_context.new_page()
    log = PageLog()
    page.on("request", log.on_request)
    page.on("requestfailed", log.on_request_failed)
    page.on("response", log.on_response)
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    try:
        yield LoggedPage(page, log)
    finally:
        page.close()
