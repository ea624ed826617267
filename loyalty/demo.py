"""Demo data for `make run`: a store, a till, members with cards and some history.

Seeding again changes no data: the same members and sales are found (sales replay by their
external ids). The till's key is only stored hashed, so the CLI keeps the key it was given in
the instance folder (`DEMO_KEY_FILE`) and hands it back here: while it still opens the demo
till, a re-seed keeps it, so `make run` prints the same key every time. A staff key with every
scope (`DEMO_STAFF_KEY_FILE`) is kept the same way, for the console and the walk-through.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.checkout.services import Basket, SaleRequest, record_sale
from loyalty.clock import Clock
from loyalty.enrolment.services import enrol
from loyalty.members.models import Member
from loyalty.members.services import Enrolment
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from loyalty.staff.accounts import create_account, list_accounts
from loyalty.staff.models import StaffKey, StaffRole
from loyalty.staff.services import Scope, authenticate_staff, create_staff_key, revoke_staff_key
from loyalty.stores.models import Store, Terminal
from loyalty.stores.services import (
    authenticate_terminal,
    create_store,
    create_terminal,
    rotate_key,
)

DEMO_STORE = "DEMO-01"
DEMO_TILL = "Till 1"
DEMO_KEY_FILE = "demo-till-key"
DEMO_STAFF_KEY_FILE = "demo-staff-key"
DEMO_STAFF_NAME = "Demo console"
DEMO_CASHIER = "demo.cashier"  # signs in at /till/; the password is kept in DEMO_CASHIER_FILE
DEMO_CASHIER_FILE = "demo-cashier-password"
ACTOR = "cli:seed-demo"

MEMBERS = [
    Enrolment(
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+44 20 7946 0018",
        birthday=date(1985, 12, 10),
        email_consent=True,
        acquisition_source="in store",
    ),
    Enrolment(
        name="Grace Hopper",
        email="grace@example.com",
        phone="+44 20 7946 0019",
        birthday=date(1990, 2, 28),
        sms_consent=True,
        acquisition_source="website",
    ),
    Enrolment(
        name="Alan Turing",
        email="alan@example.com",
        birthday=date(1992, 6, 23),
        acquisition_source="friend brings friend",
    ),
    Enrolment(name="Katherine Johnson", phone="+44 20 7946 0020", acquisition_source="flyer"),
]

BASKETS = [
    [BasketLine("MILK-1L", 2, 109, "dairy"), BasketLine("BREAD-WH", 1, 145, "bakery")],
    [BasketLine("COFFEE-500", 1, 899, "pantry"), BasketLine("APPLES-1KG", 2, 250, "produce")],
    [BasketLine("WINE-RED", 2, 1299, "drinks"), BasketLine("CHEESE-CHD", 1, 475, "dairy")],
    [BasketLine("NAPPIES-M", 1, 1150, "baby"), BasketLine("WIPES", 3, 199, "baby")],
]


@dataclass(frozen=True)
class DemoSeed:
    store: Store
    terminal: Terminal
    terminal_key: str
    members: list[Member]
    created: bool
    key_renewed: bool
    staff_key: str = ""  # every scope: the console's and the walk-through's
    staff_key_renewed: bool = False
    # the demo cashier's password when this seed created the account (None: it was there)
    cashier_password: str | None = None


def _demo_key(session: Session, terminal: Terminal, known_key: str | None) -> str | None:
    """The known key if it still opens the demo till, else None."""
    if known_key is None:
        return None
    found = authenticate_terminal(session, known_key)
    return known_key if found is not None and found.id == terminal.id else None


def _demo_staff_key(session: Session, known_key: str | None, now: datetime) -> tuple[str, bool]:
    """The known demo staff key if it still works, else a new one (older ones revoked)."""
    found = authenticate_staff(session, known_key) if known_key else None
    if known_key and found is not None and found.name == DEMO_STAFF_NAME:
        return known_key, False
    for old in session.scalars(
        select(StaffKey).where(StaffKey.name == DEMO_STAFF_NAME, StaffKey.revoked_at.is_(None))
    ):
        revoke_staff_key(session, key_id=old.id, actor=ACTOR, now=now)
    _row, key = create_staff_key(
        session, name=DEMO_STAFF_NAME, scopes=[s.value for s in Scope], actor=ACTOR, now=now
    )
    return key, True


def seed_demo(
    session: Session,
    *,
    keys: LookupKeys,
    clock: Clock,
    known_key: str | None = None,
    known_staff_key: str | None = None,
) -> DemoSeed:
    """Seed the demo shop. `known_key`: the demo till's key from an earlier seed, kept when it
    still works (None, or a key that no longer works, gives the till a new one);
    `known_staff_key` likewise for the demo's staff key."""
    now = clock.now()
    staff_key, staff_renewed = _demo_staff_key(session, known_staff_key, now)
    store = session.scalars(select(Store).where(Store.code == DEMO_STORE)).first()
    created = store is None
    if store is None:
        store = create_store(
            session, code=DEMO_STORE, name="Demo corner shop", actor=ACTOR, now=now
        )
        terminal, key = create_terminal(session, store=store, name=DEMO_TILL, actor=ACTOR, now=now)
        renewed = True
    else:
        terminal = session.scalars(
            select(Terminal).where(Terminal.store_id == store.id, Terminal.name == DEMO_TILL)
        ).one()
        kept = _demo_key(session, terminal, known_key)
        renewed = kept is None
        key = kept or rotate_key(session, terminal=terminal, actor=ACTOR, now=now)

    # Sales are dated from when the demo was first seeded, so a re-seed replays them unchanged.
    anchor = store.created_at.replace(microsecond=0)
    members = []
    for enrolment in MEMBERS:
        member = session.scalars(
            select(Member).where(
                Member.name == enrolment.name, Member.enrolled_store_id == store.id
            )
        ).first()
        if member is None:
            joined = enrol(session, enrolment, keys=keys, actor=ACTOR, now=now, store_id=store.id)
            member = session.get_one(Member, joined.id)
        members.append(member)

    for week in range(6):
        for index, member in enumerate(members):
            basket = BASKETS[(week + index) % len(BASKETS)]
            occurred = anchor - timedelta(weeks=6 - week, hours=index)
            record_sale(
                session,
                terminal=terminal,
                keys=keys,
                now=now,
                request=SaleRequest(
                    external_id=f"demo-{week:02d}-{index:02d}",
                    occurred_at=occurred,
                    basket=Basket(lines=basket, member_id=member.id),
                ),
            )
    record_sale(  # an anonymous sale: recorded for purchase analysis, earns nothing
        session,
        terminal=terminal,
        keys=keys,
        now=now,
        request=SaleRequest(
            external_id="demo-anonymous-01",
            occurred_at=anchor - timedelta(days=1),
            basket=Basket(lines=BASKETS[0]),
        ),
    )
    record_return(
        session,
        terminal=terminal,
        sale_external_id="demo-00-00",
        now=now,
        request=ReturnRequest(external_id="demo-return-01", lines=[("MILK-1L", 1)]),
    )
    return DemoSeed(
        store,
        terminal,
        key,
        members,
        created,
        renewed,
        staff_key,
        staff_renewed,
        _demo_cashier(session, store, now),
    )


def _demo_cashier(session: Session, store: Store, now: datetime) -> str | None:
    """A cashier of the demo store for the till page; its new password, or None if it exists."""
    if any(account.username == DEMO_CASHIER for account in list_accounts(session)):
        return None
    password = secrets.token_urlsafe(12)
    create_account(
        session,
        username=DEMO_CASHIER,
        password=password,
        role=StaffRole.CASHIER,
        store_id=store.id,
        actor=ACTOR,
        now=now,
    )
    return password
