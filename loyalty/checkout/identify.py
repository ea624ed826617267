"""Who is at the till: whatever the scanner or the cashier typed (a card's QR payload, a card
number, a phone or an email) to the member, their card, tier and balance, in one query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, aliased

from loyalty.cards.errors import CardBlocked, UnknownCard
from loyalty.cards.models import Card, CardStatus
from loyalty.cards.numbers import CARD_NUMBER_LENGTH, masked_card_number
from loyalty.cards.services import card_number_from_code
from loyalty.coupons.services import (
    WalletCoupon,
    find_coupon,
    has_coupons,
    usable_coupon,
    wallet,
    wallet_entry,
)
from loyalty.db import MAX_ID
from loyalty.errors import InvalidInput, NotFound, UnmatchedCode
from loyalty.ledger.models import PointAccount
from loyalty.ledger.services import Balance, as_of, matured_points
from loyalty.members.contacts import (
    looks_like_phone,
    mask_email,
    mask_phone,
    normalise_email,
    normalise_phone,
)
from loyalty.members.errors import MemberBlocked, UnknownMember
from loyalty.members.models import Member, MemberStatus
from loyalty.referrals.services import pending_referral
from loyalty.settings import LookupKeys
from loyalty.stores.access import TillViewer
from loyalty.tiers.models import MemberTier, Tier, TierView


@dataclass(frozen=True)
class MemberRef:
    """The member as a cashier sees them: contacts masked."""

    id: int
    name: str
    status: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class CardRef:
    """The card scanned, as a cashier sees it: its last digits and status, no QR payload."""

    number: str
    status: str


@dataclass(frozen=True)
class Identification:
    """Who the scanned code belongs to, with their balance and tier: one query at the till.
    `member`, `card`, `tier`, `balance` and `coupons` are what the till is shown; the rest is
    what a sale needs besides."""

    member: MemberRef
    card: CardRef | None
    tier: TierView | None  # what the member enjoys: the tier held, or a higher staff floor
    balance: Balance
    birthday: date | None
    held_tier_rank: int | None  # the tier earned by qualifying, which sales may raise
    enrolled_store_id: int | None
    # pending points past their wait that `balance` already counts as available
    matured: int = 0
    card_id: int | None = None  # the card scanned, kept with the sale
    coupons: tuple[WalletCoupon, ...] = field(default=())
    has_coupons: bool = False  # whether `coupons` would list any (read only when asked)
    pending_referral: bool = False  # a friend whose first qualifying purchase is awaited
    scanned_coupon: WalletCoupon | None = None  # when the code scanned was the member's coupon

    @property
    def member_id(self) -> int:
        return self.member.id


_TIER_COLUMNS = ("code", "name", "rank", "threshold", "earn_multiplier_percent", "perks")
_held_tier = aliased(Tier, name="held_tier")
_floor_tier = aliased(Tier, name="floor_tier")
_MEMBER_COLUMNS = (
    Member.id.label("member_id"),
    Member.name,
    Member.status.label("member_status"),
    Member.birthday,
    Member.email,
    Member.phone,
    Member.enrolled_store_id,
    PointAccount.available,
    PointAccount.pending,
    matured_points(PointAccount.member_id).label("matured"),
    has_coupons(Member.id).label("has_coupons"),
    pending_referral(Member.id).label("pending_referral"),
    MemberTier.floor_until,
    *(
        getattr(tier, column).label(f"{prefix}_{column}")
        for prefix, tier in (("held", _held_tier), ("floor", _floor_tier))
        for column in _TIER_COLUMNS
    ),
)


def _with_tiers(query: Select[Any]) -> Select[Any]:
    return (
        query.outerjoin(MemberTier, MemberTier.member_id == Member.id)
        .outerjoin(_held_tier, _held_tier.id == MemberTier.tier_id)
        .outerjoin(_floor_tier, _floor_tier.id == MemberTier.floor_tier_id)
    )


def _tier_view(row: Any, prefix: str) -> TierView:
    return TierView(*(getattr(row, f"{prefix}_{column}") for column in _TIER_COLUMNS))


def _tier_of(row: Any, now: datetime) -> TierView | None:
    """The tier held, or the floor staff gave while it lasts, whichever ranks higher."""
    tiers = []
    if row.held_code is not None:
        tiers.append(_tier_view(row, "held"))
    if row.floor_code is not None and (row.floor_until is None or row.floor_until > now):
        tiers.append(_tier_view(row, "floor"))
    return max(tiers, key=lambda tier: tier.rank) if tiers else None


def _identification(
    row: Any, card: CardRef | None, now: datetime, card_id: int | None = None
) -> Identification:
    if row.member_status == MemberStatus.BLOCKED:
        raise MemberBlocked
    return Identification(
        card_id=card_id,
        member=MemberRef(
            row.member_id,
            row.name,
            row.member_status,
            mask_email(row.email),
            mask_phone(row.phone),
        ),
        card=card,
        tier=_tier_of(row, now),
        balance=as_of(row.available, row.pending, row.matured),
        birthday=row.birthday,
        held_tier_rank=row.held_rank,
        enrolled_store_id=row.enrolled_store_id,
        matured=int(row.matured),
        has_coupons=bool(row.has_coupons),
        pending_referral=bool(row.pending_referral),
    )


_IDENTIFY_BY_CONTACT = {
    column.key: _with_tiers(
        select(*_MEMBER_COLUMNS).join(PointAccount, PointAccount.member_id == Member.id)
    ).where(column == bindparam("contact"), Member.status != MemberStatus.ERASED)
    for column in (Member.email, Member.phone)
}
_IDENTIFY_BY_CARD = _with_tiers(
    select(
        Card.id.label("card_id"),
        Card.number,
        Card.status,
        Card.blocked_reason,
        *_MEMBER_COLUMNS,
    )
    .outerjoin(Member, Member.id == Card.member_id)
    .outerjoin(PointAccount, PointAccount.member_id == Card.member_id)
).where(Card.number == bindparam("number"))


_IDENTIFY_BY_ID = _with_tiers(
    select(*_MEMBER_COLUMNS).join(PointAccount, PointAccount.member_id == Member.id)
).where(Member.id == bindparam("member_id"), Member.status != MemberStatus.ERASED)


def identify_by_id(
    session: Session, member_id: int, now: datetime, viewer: TillViewer | None = None
) -> Identification:
    """A member a till sells to by id: known, not erased, not blocked, and one the till may
    see (enrolled at its store or identified there by a code lately)."""
    if not 0 < member_id <= MAX_ID:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    session.flush()
    row = (
        session.connection().execute(_IDENTIFY_BY_ID, {"member_id": member_id, "now": now}).first()
    )
    if row is None or (viewer is not None and not viewer.sees(member_id, row.enrolled_store_id)):
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    return _identification(row, None, now)


def _as_code(normalise: Callable[[str], str], text: str) -> str:
    """Normalise a contact typed at the till; a refusal names `code`, the field it came in."""
    try:
        return normalise(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="code") from exc


def _by_contact(
    session: Session, column: str, contact: str, what: str, now: datetime
) -> Identification:
    statement = _IDENTIFY_BY_CONTACT[column]
    row = session.connection().execute(statement, {"contact": contact, "now": now}).first()
    if row is None:
        raise UnknownMember(f"no member has this {what}", field="code")
    return _identification(row, None, now)


def _by_card(session: Session, number: str, now: datetime) -> Identification:
    row = session.connection().execute(_IDENTIFY_BY_CARD, {"number": number, "now": now}).first()
    if row is None:
        raise UnknownCard
    if row.status == CardStatus.BLOCKED:
        raise CardBlocked(row.blocked_reason)
    if row.member_id is None:
        raise UnknownMember(
            "this card has not been handed to a member yet: enrol them with it", field="code"
        )
    card = CardRef(masked_card_number(row.number), row.status)
    return _identification(row, card, now, row.card_id)


def identify(
    session: Session,
    code: str,
    keys: LookupKeys,
    now: datetime,
    viewer: TillViewer | None = None,
    *,
    with_wallet: bool = False,
) -> Identification:
    """Whatever the scanner or the cashier typed: QR payload, card number, email or phone. The
    till (`viewer`) may then read the member for a while (loyalty.stores.access). With
    `with_wallet`, the coupons the member can use now (read only when they have any)."""
    found = _identify(session, code, keys, now)
    if viewer is not None:
        viewer.met(found.member_id, found.enrolled_store_id)
    if with_wallet and found.has_coupons:
        found = replace(found, coupons=tuple(wallet(session, found.member_id, now)))
    return found


@dataclass(frozen=True)
class CouponScan:
    """A coupon scanned at identify that belongs to nobody: any customer may use it."""

    scanned_coupon: WalletCoupon
    member: None = None
    card: None = None
    tier: None = None
    balance: None = None

    @property
    def coupons(self) -> tuple[WalletCoupon, ...]:
        return (self.scanned_coupon,)


def identify_or_coupon(
    session: Session,
    code: str,
    keys: LookupKeys,
    now: datetime,
    viewer: TillViewer | None = None,
    *,
    with_wallet: bool = True,
) -> Identification | CouponScan:
    """`identify`, and a coupon's code or QR as well: a member's coupon identifies its owner
    (with their wallet); a coupon for anyone answers with the coupon alone."""
    try:
        return identify(session, code, keys, now, viewer, with_wallet=with_wallet)
    except (NotFound, UnknownCard, InvalidInput) as exc:
        found = find_coupon(session, code)
        usable = found is not None and usable_coupon(*found)
        if not usable:
            if isinstance(exc, InvalidInput) and not isinstance(exc, UnmatchedCode):
                raise UnmatchedCode(exc.detail, field="code") from exc
            raise
    assert found is not None
    coupon, offer = found
    entry = wallet_entry(coupon, offer)
    if coupon.member_id is None:
        return CouponScan(entry)
    owner = identify_by_id(session, coupon.member_id, now)
    if viewer is not None:
        viewer.met(owner.member_id, owner.enrolled_store_id)
    coupons = tuple(wallet(session, owner.member_id, now)) if with_wallet else ()
    return replace(owner, coupons=coupons, scanned_coupon=entry)


def _identify(session: Session, code: str, keys: LookupKeys, now: datetime) -> Identification:
    text = code.strip()
    if not text:
        raise InvalidInput("the code is empty", field="code")
    session.flush()  # the look-ups below read through the connection, past the ORM's autoflush
    if "@" in text:
        return _by_contact(session, "email", _as_code(normalise_email, text), "email", now)
    if looks_like_phone(text) and (
        text.startswith("+") or sum(c.isdigit() for c in text) < CARD_NUMBER_LENGTH
    ):
        phone = _as_code(lambda t: normalise_phone(t, keys.phone_region), text)
        return _by_contact(session, "phone", phone, "phone number", now)
    return _by_card(session, card_number_from_code(keys, text), now)
