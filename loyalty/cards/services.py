from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.errors import CardNotAvailable, DamagedCode, UnknownCard
from loyalty.cards.models import Card, CardBatch, CardStatus
from loyalty.cards.numbers import (
    CARD_NUMBER_LENGTH,
    format_card_number,
    is_ascii_digits,
    is_valid_card_number,
    new_card_number,
    strip_separators,
)
from loyalty.cards.qr import looks_like_payload, sign_card, verify_payload
from loyalty.idempotency import Idempotency, once
from loyalty.results import Outcome
from loyalty.settings import LookupKeys
from loyalty.stores.access import TillViewer


@dataclass(frozen=True)
class CardView:
    """A card as a till, the member and staff see it, with what its QR code holds."""

    number: str
    status: str
    qr_payload: str | None  # None to a till that did not issue or hand out the card
    activated_at: datetime | None
    blocked_reason: str | None
    member_id: int | None = None  # whose card it is (not shown: the API says it elsewhere)


def card_view(card: Card, card_key: str) -> CardView:
    return CardView(
        number=card.number,
        status=card.status,
        qr_payload=sign_card(card_key, card.number),
        activated_at=card.activated_at,
        blocked_reason=card.blocked_reason,
        member_id=card.member_id,
    )


def _shown_to(view: CardView, viewer: TillViewer | None) -> CardView:
    """A till reads a card's status, not the QR payload that would let it print a copy."""
    return view if viewer is None else replace(view, qr_payload=None)


def _visible(card: Card, viewer: TillViewer | None, field: str) -> Card:
    """The card, when the caller may see its member; to a till that may not, it is unknown."""
    if viewer is not None and card.member_id is not None and not viewer.sees_member(card.member_id):
        raise UnknownCard(field)
    return card


def card_number_from_code(keys: LookupKeys, code: str, field: str = "code") -> str:
    """Accept a scanned QR payload or a typed card number; refuse anything forged or mistyped.
    `field` names the request field the code came in, for the error."""
    code = code.strip()
    if looks_like_payload(code):
        number = verify_payload((keys.card_key, *keys.previous_card_keys), code)
        if number is None:
            raise DamagedCode("this QR code is not one of our cards (damaged or forged)", field)
        return number
    number = strip_separators(code)
    if not is_valid_card_number(number):
        raise DamagedCode("the card number is mistyped: its check digit does not match", field)
    return number


def find_card(session: Session, number: str, field: str = "code", *, lock: bool = False) -> Card:
    """The card with this number. With `lock`, its row is locked until the transaction ends:
    whoever changes its status holds it, so two tills cannot both hand it out, block it or
    replace it (PostgreSQL; SQLite's write lock already serialises writers)."""
    if not (len(number) == CARD_NUMBER_LENGTH and is_ascii_digits(number)):
        raise UnknownCard(field)  # not even the shape of a card: nothing to ask the database
    query = select(Card).where(Card.number == number)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    card = session.scalars(query).first()
    if card is None:
        raise UnknownCard(field)
    return card


def _insert_card(session: Session, **fields: object) -> Card:
    # 15 random digits: a collision is rare, so retry the insert rather than pre-check.
    for _attempt in range(5):
        card = Card(number=new_card_number(), **fields)
        try:
            with session.begin_nested():
                session.add(card)
                session.flush()
        except IntegrityError:
            continue
        return card
    msg = "could not find a free card number after 5 tries"
    raise RuntimeError(msg)


def issue_card(session: Session, *, member_id: int, now: datetime) -> Card:
    return _insert_card(
        session, status=CardStatus.ACTIVE, member_id=member_id, created_at=now, activated_at=now
    )


def activate_card(
    session: Session,
    *,
    keys: LookupKeys,
    code: str,
    member_id: int,
    actor: str,
    now: datetime,
    field: str = "card_code",
) -> Card:
    """Hand a pre-printed card to a member at the till."""
    card = find_card(session, card_number_from_code(keys, code, field), field, lock=True)
    if card.status != CardStatus.UNASSIGNED:
        raise CardNotAvailable(
            f"this card is {card.status}, only a new unassigned card can be activated",
            field=field,
        )
    card.status = CardStatus.ACTIVE
    card.member_id = member_id
    card.activated_at = now
    record(
        session,
        actor=actor,
        action="card.activate",
        subject_type="card",
        subject_id=card.id,
        now=now,
        member_id=member_id,
    )
    return card


def block_card(session: Session, *, card: Card, reason: str, actor: str, now: datetime) -> Card:
    if card.status == CardStatus.BLOCKED:
        return card
    before = card.status
    card.status = CardStatus.BLOCKED
    card.blocked_at = now
    card.blocked_reason = reason
    record(
        session,
        actor=actor,
        action="card.block",
        subject_type="card",
        subject_id=card.id,
        now=now,
        before=before,
        after=CardStatus.BLOCKED,
        reason=reason,
    )
    return card


def replace_card(
    session: Session,
    *,
    keys: LookupKeys,
    old: Card,
    reason: str,
    actor: str,
    now: datetime,
    new_code: str | None = None,
) -> Card:
    """Block a lost or damaged card and give its member another. Points live on the member's
    account, not on the card, so the balance follows without being moved."""
    if old.member_id is None:
        raise CardNotAvailable("an unassigned card has nothing to replace", field="card")
    if old.replaced_by_id is not None:
        raise CardNotAvailable(
            "this card has been replaced already: look the member up to see their card",
            field="number",
        )
    member_id = old.member_id
    block_card(session, card=old, reason=reason, actor=actor, now=now)
    if new_code:
        new = activate_card(
            session,
            keys=keys,
            code=new_code,
            member_id=member_id,
            actor=actor,
            now=now,
            field="new_card_code",
        )
    else:
        new = issue_card(session, member_id=member_id, now=now)
    old.replaced_by_id = new.id
    record(
        session,
        actor=actor,
        action="card.replace",
        subject_type="card",
        subject_id=old.id,
        now=now,
        member_id=member_id,
        replaced_by=new.id,
    )
    return new


def member_cards(session: Session, member_id: int) -> list[Card]:
    return list(session.scalars(select(Card).where(Card.member_id == member_id).order_by(Card.id)))


@dataclass(frozen=True)
class PrintedCard:
    number: str
    payload: str


def create_batch(
    session: Session, *, card_key: str, size: int, note: str | None, actor: str, now: datetime
) -> tuple[CardBatch, list[PrintedCard]]:
    if not 1 <= size <= 100_000:  # noqa: PLR2004 - a printer's run, not a typo of a million
        raise ValueError("a batch holds from 1 to 100000 cards")
    batch = CardBatch(size=size, note=note, created_at=now)
    session.add(batch)
    session.flush()
    cards = [
        _insert_card(session, status=CardStatus.UNASSIGNED, batch_id=batch.id, created_at=now)
        for _ in range(size)
    ]
    record(
        session,
        actor=actor,
        action="card_batch.create",
        subject_type="card_batch",
        subject_id=batch.id,
        now=now,
        size=size,
        note=note,
    )
    return batch, [PrintedCard(c.number, sign_card(card_key, c.number)) for c in cards]


def printer_csv(cards: list[PrintedCard]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["card_number", "printed_number", "qr_payload"])
    for card in cards:
        writer.writerow([card.number, format_card_number(card.number), card.payload])
    return out.getvalue()


def card_by_number(
    session: Session, number: str, *, card_key: str, viewer: TillViewer | None = None
) -> CardView:
    card = _visible(find_card(session, strip_separators(number), field="number"), viewer, "number")
    return _shown_to(card_view(card, card_key), viewer)


def block_card_once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    number: str,
    reason: str,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Outcome[CardView]:
    """Block the card with this number (lost, stolen); blocking it again changes nothing. A
    till blocks only cards of members it may see."""

    def run() -> CardView:
        card = find_card(session, strip_separators(number), field="number", lock=True)
        _visible(card, viewer, "number")
        blocked = block_card(session, card=card, reason=reason, actor=actor, now=now)
        return _shown_to(card_view(blocked, keys.card_key), viewer)

    return once(
        session,
        idempotency,
        operation="card.block",
        request={"number": number, "reason": reason},
        result_type=CardView,
        run=run,
        now=now,
        member_of=lambda view: view.member_id,
    )


def replace_card_once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    number: str,
    reason: str,
    new_code: str | None,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Outcome[CardView]:
    """Block the card with this number and give its member another: the new card, with its QR
    payload (the till hands it over). A till replaces only cards of members it may see."""

    def run() -> CardView:
        old = _visible(
            find_card(session, strip_separators(number), field="number", lock=True),
            viewer,
            "number",
        )
        new = replace_card(
            session, keys=keys, old=old, reason=reason, actor=actor, now=now, new_code=new_code
        )
        return card_view(new, keys.card_key)

    return once(
        session,
        idempotency,
        operation="card.replace",
        request={"number": number, "reason": reason, "new_code": new_code},
        result_type=CardView,
        run=run,
        now=now,
        member_of=lambda view: view.member_id,
    )
