"""The till page in headless Chromium: a cashier signs in, a scanner types a member's QR code
and Enter, the cashier adds a line and completes the sale, and the receipt shows. Screenshots
go to tests/artifacts/ (ignored by git) to be looked at."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from loyalty.cards.qr import sign_card
from loyalty.db import make_engine
from loyalty.enrolment.services import Enrolment, enrol
from loyalty.settings import LookupKeys
from loyalty.staff.accounts import create_account
from loyalty.staff.models import StaffRole
from loyalty.stores.services import create_store
from tests.browser.test_till_sign_in import ARTIFACTS, PASSWORD
from tests.conftest import CARD_KEY, START

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.browser.conftest import LoggedPage


def _store_cashier_and_member(database_url: str) -> str:
    """The member's QR payload."""
    engine = make_engine(database_url)
    keys = LookupKeys(card_key=CARD_KEY, phone_region="GB")
    with Session(engine) as session, session.begin():
        store = create_store(session, code="TILL2", name="Market Square", actor="test", now=START)
        create_account(
            session,
            username="bo.cashier",
            password=PASSWORD,
            role=StaffRole.CASHIER,
            store_id=store.id,
            actor="test",
            now=START,
        )
        joined = enrol(
            session,
            Enrolment(name="Carla Browser", email="carla@example.com"),
            keys=keys,
            actor="test",
            now=START,
            store_id=store.id,
        )
        number = joined.cards[0].number
    engine.dispose()
    return sign_card(CARD_KEY, number)


def test_a_scanner_types_a_qr_and_the_cashier_completes_a_sale(
    live_server: str, logged_page: LoggedPage, browser_database_url: str
) -> None:
    qr = _store_cashier_and_member(browser_database_url)
    page, log = logged_page.page, logged_page.log
    ARTIFACTS.mkdir(exist_ok=True)
    page.context.clear_cookies()
    try:
        _sell(live_server, page, qr)
    finally:
        page.context.clear_cookies()  # the next test starts signed out
    assert log.problems == []
    assert log.off_machine() == []


def _sell(live_server: str, page: Page, qr: str) -> None:

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/till/sign-in")
    page.get_by_label("Username").fill("bo.cashier")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{live_server}/till/")

    scan_field = page.locator("input[name=code]")
    scan_field.wait_for(state="visible")
    page.wait_for_function("document.activeElement && document.activeElement.name === 'code'")
    page.keyboard.type(qr)  # the scan field has the focus; a scanner types, then Enter
    page.keyboard.press("Enter")
    page.get_by_text("Carla Browser").wait_for(state="visible")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "till-member-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})

    page.get_by_label("SKU").fill("COFFEE")
    page.get_by_label("Quantity").fill("2")
    page.get_by_label("Unit price (in cents)").fill("350")
    page.get_by_label("Unit price (in cents)").press("Enter")
    page.get_by_text("€7.00").first.wait_for(state="visible")
    assert page.get_by_label("SKU").evaluate("field => field === document.activeElement")

    page.get_by_role("button", name="Complete sale").click()
    page.get_by_role("heading", name="Receipt").wait_for(state="visible")
    assert page.locator(".till-receipt-id").inner_text().startswith("web-")
    # no coupon, no points: the receipt shows no empty "Discounts" row
    assert page.locator(".till-receipt").get_by_text("Discounts").count() == 0
    assert page.locator(".till-points-earned").is_visible()
    page.screenshot(path=str(ARTIFACTS / "till-after-sale-desktop.png"), full_page=True)
