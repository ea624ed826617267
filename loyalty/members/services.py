from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.models import Card
from loyalty.cards.numbers import CARD_NUMBER_LENGTH
from loyalty.cards.services import activate_card, block_card, issue_card, usable_card
from loyalty.errors import InvalidInput
from loyalty.ledger.services import Balance, balance, open_account
from loyalty.members.contacts import (
    looks_like_phone,
    normalise_email,
    normalise_phone,
)
from loyalty.members.errors import ContactTaken, MemberBlocked, UnknownMember
from loyalty.members.models import Member, MemberStatus


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


def _usable(member: Member) -> Member:
    if member.status == MemberStatus.BLOCKED:
        raise MemberBlocked
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


def find_by_code(session: Session, code: str, keys: LookupKeys) -> tuple[Member, Card | None]:
    """Whatever the scanner or the cashier typed: QR payload, card number, email or phone."""
    text = code.strip()
    if not text:
        raise InvalidInput("the code is empty", field="code")
    if "@" in text:
        member = session.scalars(
            select(Member).where(
                Member.email == _as_code(normalise_email, text),
                Member.status != MemberStatus.ERASED,
            )
        ).first()
        if member is None:
            raise UnknownMember("no member has this email", field="code")
        return _usable(member), None
    if looks_like_phone(text) and (
        text.startswith("+") or sum(c.isdigit() for c in text) < CARD_NUMBER_LENGTH
    ):
        phone = _as_code(lambda t: normalise_phone(t, keys.phone_region), text)
        member = session.scalars(
            select(Member).where(Member.phone == phone, Member.status != MemberStatus.ERASED)
        ).first()
        if member is None:
            raise UnknownMember("no member has this phone number", field="code")
        return _usable(member), None
    card = usable_card(session, keys.card_key, text)
    if card.member_id is None:
        raise UnknownMember(
            "this card has not been handed to a member yet: enrol them with it", field="code"
        )
    return _usable(get_member(session, card.member_id)), card


@dataclass(frozen=True)
class Identification:
    member: Member
    card: Card | None
    balance: Balance


def identify(session: Session, code: str, keys: LookupKeys) -> Identification:
    member, card = find_by_code(session, code, keys)
    return Identification(member=member, card=card, balance=balance(session, member.id))


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
