"""The pages a person opens, in headless Chromium against the real app on loopback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.browser.conftest import LoggedPage

TILL_PATHS = [
    "/api/v1/pos/identify",
    "/api/v1/pos/quote",
    "/api/v1/pos/transactions",
    "/api/v1/pos/transactions/{external_id}/returns",
    "/api/v1/pos/transactions/{external_id}/void",
]


def _wait_for_docs(page: Page) -> None:
    """Swagger UI has rendered the spec once the till operations' paths are on the page."""
    page.locator(".opblock-summary-path").first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")


def _visible_paths(page: Page) -> list[str]:
    # Swagger UI puts zero-width spaces into long paths so they can wrap.
    texts = page.locator(".opblock-summary-path").all_inner_texts()
    return [text.replace("\u200b", "").strip() for text in texts]


def test_the_api_docs_page_renders_the_till_operations_from_this_machine_alone(
    live_server: str, logged_page: LoggedPage
) -> None:
    page, log = logged_page.page, logged_page.log

    page.goto(f"{live_server}/api/docs")
    _wait_for_docs(page)

    assert page.title() == "Loyalty till API"
    paths = _visible_paths(page)
    for path in TILL_PATHS:
        assert path in paths, f"{path} is not shown; the page shows {paths}"
    transactions = page.locator(".opblock-summary-path[data-path='/api/v1/pos/transactions']")
    assert transactions.first.is_visible()
    assert page.get_by_text("identify", exact=False).first.is_visible()

    assert log.requests, "the page made no requests at all"
    assert f"{live_server}/api/docs/static/swagger-ui-bundle.js" in log.requests
    assert f"{live_server}/api/docs/static/swagger-ui.css" in log.requests
    assert f"{live_server}/api/openapi.json" in log.requests
    assert log.off_machine() == [], "the docs page must work offline"
    assert log.problems == []


def test_the_home_page_shows_its_links_and_the_till_api_documentation_link_opens_the_docs(
    live_server: str, logged_page: LoggedPage
) -> None:
    page, log = logged_page.page, logged_page.log

    page.goto(f"{live_server}/")

    assert page.title() == "Loyalty"
    assert page.get_by_role("heading", name="Loyalty").is_visible()
    links = {
        "Till API documentation": "/api/docs",
        "OpenAPI document": "/api/openapi.json",
        "Health": "/health/ready",
    }
    for name, href in links.items():
        link = page.get_by_role("link", name=name)
        assert link.is_visible(), f"the home page has no visible {name!r} link"
        assert link.get_attribute("href") == href

    page.get_by_role("link", name="Till API documentation").click()
    page.wait_for_url(re.compile(r"/api/docs/?$"))
    _wait_for_docs(page)
    assert "/api/v1/pos/transactions" in _visible_paths(page)

    assert log.off_machine() == []
    assert log.problems == []
