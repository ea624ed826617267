from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session, aliased

from loyalty.audit.services import record
from loyalty.cards.errors import CardBlocked, UnknownCard
from loyalty.cards.models import Card, CardStatus
from loyalty.cards.numbers import CARD_NUMBER_LENGTH
from loyalty.cards.services import activate_card, block_card, card_number_from_code, issue_card
from loyalty.errors import InvalidInput
from loyalty.ledger.models import EntryKind, PointAccount
from loyalty.ledger.services import Balance, as_of, credit, matured_points, open_account
from loyalty.members.contacts import (
    looks_like_phone,
    normalise_email,
    normalise_phone,
)
from loyalty.members.errors import ContactTaken, MemberBlocked, UnknownMember
from loyalty.members.models import Member, MemberStatus
from loyalty.program import get_program
from loyalty.rules.engine import EarnContext, RuleKind, signup_points
from loyalty.rules.pricing import default_rate
from loyalty.rules.services import live_rules, record_awards
from loyalty.tiers.models import MemberTier, Tier, TierView


@dataclass(frozen=True)
class Enrolment:
    name: str
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    email_consent: bool = False
    sms_consent: bool = False
    acquisition_source: str | None = None
    card_code: str | None = None  # a pre-printed card handed over at the till


def enrol(
    session: Session,
    enrolment: Enrolment,
    *,
    card_key: str,
    phone_region: str,
    actor: str,
    now: datetime,
    store_id: int | None = None,
    store_code: str | None = None,
) -> tuple[Member, Card]:
    email = normalise_email(enrolment.email) if enrolment.email else None
    phone = normalise_phone(enrolment.phone, phone_region) if enrolment.phone else None
    if enrolment.email_consent and email is None:
        raise InvalidInput("email consent needs an email address", field="email_consent")
    if enrolment.sms_consent and phone is None:
        raise InvalidInput("SMS consent needs a phone number", field="sms_consent")
    if enrolment.birthday is not None and enrolment.birthday > now.date():
        raise InvalidInput("the birthday is in the future", field="birthday")
    _refuse_taken_contacts(session, email, phone)
    member = Member(
        name=enrolment.name.strip(),
        email=email,
        phone=phone,
        birthday=enrolment.birthday,
        email_consent_at=now if enrolment.email_consent else None,
        sms_consent_at=now if enrolment.sms_consent else None,
        acquisition_source=enrolment.acquisition_source,
        status=MemberStatus.ACTIVE,
        enrolled_store_id=store_id,
        created_at=now,
    )
    session.add(member)
    session.flush()
    open_account(session, member.id, now)
    _welcome(session, member.id, store_code=store_code, actor=actor, now=now)
    if enrolment.card_code:
        card = activate_card(
            session,
            card_key=card_key,
            code=enrolment.card_code,
            member_id=member.id,
            actor=actor,
            now=now,
        )
    else:
        card = issue_card(session, member_id=member.id, now=now)
    record(
        session,
        actor=actor,
        action="member.enrol",
        subject_type="member",
        subject_id=member.id,
        now=now,
        card_id=card.id,
        acquisition_source=enrolment.acquisition_source,
    )
    return member, card


def _welcome(
    session: Session, member_id: int, *, store_code: str | None, actor: str, now: datetime
) -> None:
    """Sign-up bonuses: rules of kind `signup` live at enrolment, in one credit."""
    rules = live_rules(session)
    if not any(rule.kind == RuleKind.SIGNUP for rule in rules):
        return
    program = get_program(session)
    ctx = EarnContext(
        occurred_at=now,
        zone=program.zone,
        default_rate=default_rate(program),
        lines=(),
        store_code=store_code,
    )
    awards = signup_points(rules, ctx)
    points = sum(award.points for award in awards)
    if points:
        credit(
            session,
            program=program,
            member_id=member_id,
            points=points,
            kind=EntryKind.BONUS,
            reason="sign-up bonus",
            actor=actor,
            now=now,
        )
        record_awards(session, member_id=member_id, sale_id=None, awards=awards, awarded_at=now)


def _refuse_taken_contacts(session: Session, email: str | None, phone: str | None) -> None:
    clauses = []
    if email:
        clauses.append(Member.email == email)
    if phone:
        clauses.append(Member.phone == phone)
    if not clauses:
        return
    taken = session.scalars(
        select(Member).where(or_(*clauses), Member.status != MemberStatus.ERASED)
    ).first()
    if taken is not None:
        field = "email" if email and taken.email == email else "phone"
        raise ContactTaken(f"another member already uses this {field}", field=field)


MAX_ID = 2**63 - 1


def get_member(session: Session, member_id: int) -> Member:
    if not 0 < member_id <= MAX_ID:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    member = session.get(Member, member_id)
    if member is None or member.status == MemberStatus.ERASED:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    return member


def _as_code(normalise: Callable[[str], str], text: str) -> str:
    """Normalise a contact typed at the till; a refusal names `code`, the field it came in."""
    try:
        return normalise(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="code") from exc


@dataclass(frozen=True)
class LookupKeys:
    """What reading a scanned code needs: the key that signs QR cards, the phone region."""

    card_key: str
    phone_region: str


@dataclass(frozen=True)
class CardView:
    id: int
    number: str
    status: str
    activated_at: datetime | None
    blocked_reason: str | None


@dataclass(frozen=True)
class Identification:
    """Who the scanned code belongs to, with their balance and tier: one query at the till."""

    member_id: int
    name: str
    status: str
    card: CardView | None
    balance: Balance
    birthday: date | None
    tier: TierView | None  # what the member enjoys: the tier held, or a higher staff floor
    held_tier_rank: int | None  # the tier earned by qualifying, which sales may raise
    # pending points past their wait that `balance` already counts as available
    matured: int = 0


_held_tier = aliased(Tier, name="held_tier")
_floor_tier = aliased(Tier, name="floor_tier")
_MEMBER_COLUMNS = (
    Member.id.label("member_id"),
    Member.name,
    Member.status.label("member_status"),
    Member.birthday,
    PointAccount.available,
    PointAccount.pending,
    matured_points(PointAccount.member_id).label("matured"),
    MemberTier.floor_until,
    *(
        getattr(tier, column).label(f"{prefix}_{column}")
        for prefix, tier in (("held", _held_tier), ("floor", _floor_tier))
        for column in ("code", "name", "rank", "earn_multiplier_percent")
    ),
)


def _with_tiers(query: Select[Any]) -> Select[Any]:
    return (
        query.outerjoin(MemberTier, MemberTier.member_id == Member.id)
        .outerjoin(_held_tier, _held_tier.id == MemberTier.tier_id)
        .outerjoin(_floor_tier, _floor_tier.id == MemberTier.floor_tier_id)
    )


def _tier_of(row: Any, now: datetime) -> TierView | None:
    """The tier held, or the floor staff gave while it lasts, whichever ranks higher."""
    tiers = []
    if row.held_code is not None:
        tiers.append(
            TierView(row.held_code, row.held_name, row.held_rank, row.held_earn_multiplier_percent)
        )
    if row.floor_code is not None and (row.floor_until is None or row.floor_until > now):
        tiers.append(
            TierView(
                row.floor_code, row.floor_name, row.floor_rank, row.floor_earn_multiplier_percent
            )
        )
    return max(tiers, key=lambda tier: tier.rank) if tiers else None


def _identification(row: Any, card: CardView | None, now: datetime) -> Identification:
    if row.member_status == MemberStatus.BLOCKED:
        raise MemberBlocked
    return Identification(
        member_id=row.member_id,
        name=row.name,
        status=row.member_status,
        card=card,
        balance=as_of(row.available, row.pending, row.matured),
        birthday=row.birthday,
        tier=_tier_of(row, now),
        held_tier_rank=row.held_rank,
        matured=int(row.matured),
    )


_IDENTIFY_BY_CONTACT = {
    column.key: _with_tiers(
        select(*_MEMBER_COLUMNS).join(PointAccount, PointAccount.member_id == Member.id)
    ).where(column == bindparam("contact"), Member.status != MemberStatus.ERASED)
    for column in (Member.email, Member.phone)
}
_IDENTIFY_BY_CARD = _with_tiers(
    select(
        Card.id,
        Card.number,
        Card.status,
        Card.activated_at,
        Card.blocked_reason,
        *_MEMBER_COLUMNS,
    )
    .outerjoin(Member, Member.id == Card.member_id)
    .outerjoin(PointAccount, PointAccount.member_id == Card.member_id)
).where(Card.number == bindparam("number"))


_IDENTIFY_BY_ID = _with_tiers(
    select(*_MEMBER_COLUMNS).join(PointAccount, PointAccount.member_id == Member.id)
).where(Member.id == bindparam("member_id"), Member.status != MemberStatus.ERASED)


def identify_by_id(session: Session, member_id: int, now: datetime) -> Identification:
    """A member a till sells to by id: known, not erased, not blocked."""
    if not 0 < member_id <= MAX_ID:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    session.flush()
    row = (
        session.connection().execute(_IDENTIFY_BY_ID, {"member_id": member_id, "now": now}).first()
    )
    if row is None:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    return _identification(row, None, now)


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
    card = CardView(row.id, row.number, row.status, row.activated_at, row.blocked_reason)
    return _identification(row, card, now)


def identify(session: Session, code: str, keys: LookupKeys, now: datetime) -> Identification:
    """Whatever the scanner or the cashier typed: QR payload, card number, email or phone."""
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
    return _by_card(session, card_number_from_code(keys.card_key, text), now)


def set_blocked(
    session: Session, *, member_id: int, blocked: bool, reason: str, actor: str, now: datetime
) -> Member:
    """Block a member (fraud, abuse) or lift the block. A blocked member is refused at every
    till, and their email and phone stay reserved so they cannot simply enrol again."""
    member = get_member(session, member_id)
    before = member.status
    member.status = MemberStatus.BLOCKED if blocked else MemberStatus.ACTIVE
    record(
        session,
        actor=actor,
        action="member.block" if blocked else "member.unblock",
        subject_type="member",
        subject_id=member.id,
        now=now,
        before=before,
        after=member.status,
        reason=reason,
    )
    return member


ERASED_NAME = "(erased)"


def erase(session: Session, *, member_id: int, reason: str, actor: str, now: datetime) -> Member:
    """The right to erasure: personal data goes, cards stop working, contacts are released.
    Sales and point entries stay, no longer linked to a person, so figures still add up."""
    member = get_member(session, member_id)
    member.name = ERASED_NAME
    member.email = None
    member.phone = None
    member.birthday = None
    member.email_consent_at = None
    member.sms_consent_at = None
    member.status = MemberStatus.ERASED
    for card in session.scalars(select(Card).where(Card.member_id == member.id)):
        block_card(session, card=card, reason="member erased", actor=actor, now=now)
    record(
        session,
        actor=actor,
        action="member.erase",
        subject_type="member",
        subject_id=member.id,
        now=now,
        reason=reason,
    )
    return member
