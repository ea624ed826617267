"""The till's sign-in in headless Chromium against the real app: a cashier signs in with the
keyboard and lands on the till's start page; screenshots at phone and desktop size go to
tests/artifacts/ (ignored by git) to be looked at."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from loyalty.db import make_engine
from loyalty.staff.accounts import create_account
from loyalty.staff.models import StaffRole
from loyalty.stores.services import create_store
from tests.conftest import START

if TYPE_CHECKING:
    from tests.browser.conftest import LoggedPage

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery"


def test_a_cashier_signs_in_with_the_keyboard_and_sees_their_store(
    live_server: str, logged_page: LoggedPage, browser_database_url: str
) -> None:
    engine = make_engine(browser_database_url)
    with Session(engine) as session, session.begin():
        store = create_store(session, code="TILL1", name="High Street", actor="test", now=START)
        create_account(
            session,
            username="ana.cashier",
            password=PASSWORD,
            role=StaffRole.CASHIER,
            store_id=store.id,
            actor="test",
            now=START,
        )
    engine.dispose()
    page, log = logged_page.page, logged_page.log
    ARTIFACTS.mkdir(exist_ok=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/till/")
    assert page.url.startswith(f"{live_server}/till/sign-in")
    page.screenshot(path=str(ARTIFACTS / "till-sign-in-phone.png"), full_page=True)

    page.keyboard.type("ana.cashier")  # the username field has focus
    page.keyboard.press("Tab")
    page.keyboard.type("wrong password here")
    page.keyboard.press("Enter")
    refused = page.get_by_text("The username or the password is wrong.")
    refused.wait_for(state="visible")
    assert page.get_by_label("Password").evaluate("field => field === document.activeElement")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{live_server}/till/")
    assert page.get_by_text("ana.cashier").first.is_visible()
    assert page.get_by_text("High Street").first.is_visible()
    page.set_viewport_size({"width": 1366, "height": 768})
    page.screenshot(path=str(ARTIFACTS / "till-start-desktop.png"), full_page=True)
    assert log.off_machine() == []
