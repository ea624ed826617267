"""Building blocks for tests: stores, tills, members with points, sales."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.cards.models import Card
from loyalty.cards.qr import sign_card
from loyalty.checkout.results import SaleResult
from loyalty.checkout.services import Basket, SaleRequest, record_sale
from loyalty.clock import FixedClock
from loyalty.enrolment.services import enrol
from loyalty.members.models import Member
from loyalty.members.services import Enrolment
from loyalty.results import Outcome
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from loyalty.stores.models import Store, Terminal
from loyalty.stores.services import create_store, create_terminal

_counter = itertools.count(1)


@dataclass
class Till:
    store: Store
    terminal: Terminal
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_till(session: Session, clock: FixedClock, store_code: str | None = None) -> Till:
    n = next(_counter)
    store = create_store(
        session, code=store_code or f"S{n:05d}", name=f"Store {n}", actor="test", now=clock.now()
    )
    terminal, key = create_terminal(
        session, store=store, name=f"Till {n}", actor="test", now=clock.now()
    )
    session.flush()
    return Till(store, terminal, key)


def make_member(
    session: Session,
    keys: LookupKeys,
    clock: FixedClock,
    *,
    store_id: int | None = None,
    **fields: Any,
) -> tuple[Member, Card]:
    """A member with a card, enrolled online (or at `store_id`, whose tills may then read them)."""
    n = next(_counter)
    fields.setdefault("name", f"Member {n}")
    fields.setdefault("email", f"member{n}@example.com")
    joined = enrol(
        session, Enrolment(**fields), keys=keys, actor="test", now=clock.now(), store_id=store_id
    )
    session.flush()
    member = session.get_one(Member, joined.id)
    card = session.scalars(select(Card).where(Card.number == joined.cards[0].number)).one()
    return member, card


def qr_of(card: Card, keys: LookupKeys) -> str:
    return sign_card(keys.card_key, card.number)


def sell(
    session: Session,
    till: Till,
    keys: LookupKeys,
    clock: FixedClock,
    *,
    member: Member | None = None,
    lines: list[BasketLine] | None = None,
    redeem: int = 0,
    external_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Outcome[SaleResult]:
    request = SaleRequest(
        external_id=external_id or f"sale-{next(_counter)}",
        occurred_at=occurred_at or clock.now(),
        basket=Basket(
            lines=lines or [BasketLine("SKU-1", 1, 1000)],
            member_id=member.id if member else None,
            redeem_points=redeem,
        ),
    )
    recorded = record_sale(
        session, terminal=till.terminal, request=request, keys=keys, now=clock.now()
    )
    session.flush()
    return recorded


def sale_body(
    external_id: str, code: str | None, occurred_at: datetime, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "occurred_at": occurred_at.isoformat(),
        "lines": [
            {"sku": "MILK", "category": "dairy", "quantity": 2, "unit_price": 125},
            {"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price": 250},
            {"sku": "COFFEE", "category": "pantry", "quantity": 1, "unit_price": 899},
            {"sku": "APPLES", "category": "produce", "quantity": 3, "unit_price": 60},
            {"sku": "SOAP", "category": "household", "quantity": 1, "unit_price": 199},
        ],
    }
    if code:
        body["code"] = code
    body |= extra
    return body


def staff_headers(session: Session, clock: FixedClock, *scopes: str) -> dict[str, str]:
    """A staff key with these scopes, ready for an Authorization header."""
    from loyalty.staff.services import create_staff_key  # noqa: PLC0415

    _key, plaintext = create_staff_key(
        session,
        name=f"staff {next(_counter)}",
        scopes=list(scopes),
        actor="test",
        now=clock.now(),
    )
    session.flush()
    return {"Authorization": f"Bearer {plaintext}"}


def give_points(session: Session, member_id: int, points: int, at: datetime) -> int:
    """A bonus credit, as staff or a campaign would give it; the id of the entry written."""
    from loyalty.ledger.models import EntryKind  # noqa: PLC0415
    from loyalty.ledger.services import credit  # noqa: PLC0415
    from loyalty.program import get_program  # noqa: PLC0415

    return credit(
        session,
        program=get_program(session),
        member_id=member_id,
        points=points,
        kind=EntryKind.BONUS,
        reason="bonus",
        actor="test",
        now=at,
    ).entry_id
