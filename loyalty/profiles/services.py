"""A member as a till, the console and the member themselves see them: the record, the balance
as of now, the tier and the cards; and everything the programme holds about them (the right of
access). Reads across members, ledger, tiers, cards and sales, so it sits above them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.cards.numbers import masked_card_number
from loyalty.cards.services import CardView, card_view, member_cards
from loyalty.ledger.models import PointEntry
from loyalty.ledger.services import Balance, balance_as_of
from loyalty.members.contacts import mask_email, mask_phone
from loyalty.members.errors import UnknownMember
from loyalty.members.models import ConsentEvent, Member
from loyalty.members.services import MemberChanges, consent_history, get_member, update_member
from loyalty.referrals.services import remember_contacts
from loyalty.sales.models import Sale
from loyalty.sales.services import SaleView, sale_views, with_lines
from loyalty.settings import LookupKeys
from loyalty.stores.access import TillViewer
from loyalty.tiers.models import TierView
from loyalty.tiers.services import current_tier


@dataclass(frozen=True)
class Consents:
    """Consents as given: whether, and since when (None when not given)."""

    email: bool
    sms: bool
    email_given_at: datetime | None
    sms_given_at: datetime | None


@dataclass(frozen=True)
class MemberProfile:
    id: int
    name: str
    email: str | None
    phone: str | None
    birthday: date | None
    consents: Consents
    acquisition_source: str | None
    status: str
    created_at: datetime
    balance: Balance
    tier: TierView | None
    cards: tuple[CardView, ...]


def consents_of(member: Member) -> Consents:
    return Consents(
        email=member.email_consent_at is not None,
        sms=member.sms_consent_at is not None,
        email_given_at=member.email_consent_at,
        sms_given_at=member.sms_consent_at,
    )


def profile_of(session: Session, member: Member, *, card_key: str, now: datetime) -> MemberProfile:
    return MemberProfile(
        id=member.id,
        name=member.name,
        email=member.email,
        phone=member.phone,
        birthday=member.birthday,
        consents=consents_of(member),
        acquisition_source=member.acquisition_source,
        status=member.status,
        created_at=member.created_at,
        balance=balance_as_of(session, member.id, now),
        tier=current_tier(session, member.id, now),
        cards=tuple(card_view(card, card_key) for card in member_cards(session, member.id)),
    )


def for_cashier(shown: MemberProfile) -> MemberProfile:
    """What a till is shown of a member: name, tier, points, contacts masked, no birthday, the
    cards' last digits and no QR payloads."""
    return replace(
        shown,
        email=mask_email(shown.email),
        phone=mask_phone(shown.phone),
        birthday=None,
        cards=tuple(
            replace(card, number=masked_card_number(card.number), qr_payload=None)
            for card in shown.cards
        ),
    )


def visible_member(session: Session, member_id: int, viewer: TillViewer | None) -> Member:
    """The member (not erased), when the caller may see them: staff (no viewer) any member, a
    till those enrolled at its store or identified there lately. To a till that may not, the
    member does not exist (a 404, as for an id nobody has)."""
    member = get_member(session, member_id)
    if viewer is not None and not viewer.sees(member.id, member.enrolled_store_id):
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    return member


def profile(
    session: Session,
    member_id: int,
    *,
    card_key: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> MemberProfile:
    """The member (not erased) with their balance as of `now`, tier and cards: in full to
    staff, as a cashier needs them to a till that may see them (`viewer`)."""
    member = visible_member(session, member_id, viewer)
    shown = profile_of(session, member, card_key=card_key, now=now)
    return shown if viewer is None else for_cashier(shown)


@dataclass(frozen=True)
class ConsentRecord:
    channel: str
    granted: bool
    source: str
    at: datetime


@dataclass(frozen=True)
class EntryRecord:
    id: int
    kind: str
    points: int
    pending_points: int
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class MemberExport:
    """Everything the programme holds about one member, for the right of access."""

    exported_at: datetime
    member: MemberProfile
    consent_history: tuple[ConsentRecord, ...]
    entries: tuple[EntryRecord, ...]
    sales: tuple[SaleView, ...]


def _consent(event: ConsentEvent) -> ConsentRecord:
    return ConsentRecord(event.channel, event.granted, event.source, event.at)


def export_member(
    session: Session, member_id: int, *, card_key: str, now: datetime
) -> MemberExport:
    member = get_member(session, member_id)
    entries = session.scalars(
        select(PointEntry).where(PointEntry.member_id == member_id).order_by(PointEntry.id)
    )
    sales = session.scalars(
        with_lines(
            select(Sale).where(Sale.member_id == member_id).order_by(Sale.occurred_at, Sale.id)
        )
    )
    return MemberExport(
        exported_at=now,
        member=profile_of(session, member, card_key=card_key, now=now),
        consent_history=tuple(_consent(event) for event in consent_history(session, member_id)),
        entries=tuple(
            EntryRecord(e.id, e.kind, e.points, e.pending_points, e.reason, e.created_at)
            for e in entries
        ),
        sales=tuple(sale_views(session, sales)),
    )


def change_member(
    session: Session,
    member_id: int,
    changes: MemberChanges,
    *,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> MemberProfile:
    """Change a member's record (loyalty.members.services.update_member): the member as they
    now stand. A till (`viewer`) changes only members it may see, and is shown the result as
    a cashier is."""
    visible_member(session, member_id, viewer)
    member = update_member(
        session, member_id, changes, phone_region=keys.phone_region, actor=actor, now=now
    )
    # a new contact is remembered too (the referral guards know it from now on)
    remember_contacts(
        session,
        member_id=member.id,
        email=member.email,
        phone=member.phone,
        key=keys.contacts,
        now=now,
    )
    shown = profile_of(session, member, card_key=keys.card_key, now=now)
    return shown if viewer is None else for_cashier(shown)
