"""Member records: who a member is, how to reach them, what they consented to, their status.
Joining the programme as a whole (points account, card, welcome bonus) is loyalty/enrolment."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.models import Card
from loyalty.cards.numbers import strip_separators
from loyalty.cards.services import block_card
from loyalty.db import MAX_ID
from loyalty.errors import InvalidInput
from loyalty.idempotency import forget_member
from loyalty.members.contacts import normalise_email, normalise_phone
from loyalty.members.errors import ContactTaken, UnknownMember
from loyalty.members.models import ConsentChannel, ConsentEvent, Member, MemberStatus

NAME_LENGTH = 200


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
    referral_code: str | None = None  # a friend's code: "friend brings friend"


def _clean_name(name: str) -> str:
    text = name.strip()
    if not 1 <= len(text) <= NAME_LENGTH:
        raise InvalidInput(f"a name has 1 to {NAME_LENGTH} characters", field="name")
    return text


def _check_birthday(birthday: date | None, now: datetime) -> None:
    if birthday is not None and birthday > now.date():
        raise InvalidInput("the birthday is in the future", field="birthday")


def _consents_need_contacts(
    email: str | None, phone: str | None, *, email_consent: bool, sms_consent: bool
) -> None:
    if email_consent and email is None:
        raise InvalidInput("email consent needs an email address", field="consents.email")
    if sms_consent and phone is None:
        raise InvalidInput("SMS consent needs a phone number", field="consents.sms")


def _record_consent(
    session: Session,
    member_id: int,
    channel: ConsentChannel,
    *,
    granted: bool,
    source: str,
    now: datetime,
) -> None:
    session.add(
        ConsentEvent(member_id=member_id, channel=channel, granted=granted, source=source, at=now)
    )


def register(
    session: Session,
    enrolment: Enrolment,
    *,
    phone_region: str,
    actor: str,
    now: datetime,
    store_id: int | None = None,
) -> Member:
    """The member's record, with their contacts normalised and refused when another member
    holds them, and each consent given recorded with its time and source."""
    email = normalise_email(enrolment.email) if enrolment.email else None
    phone = normalise_phone(enrolment.phone, phone_region) if enrolment.phone else None
    _consents_need_contacts(
        email, phone, email_consent=enrolment.email_consent, sms_consent=enrolment.sms_consent
    )
    _check_birthday(enrolment.birthday, now)
    refuse_taken_contacts(session, email, phone)
    member = Member(
        name=_clean_name(enrolment.name),
        email=email,
        phone=phone,
        birthday=enrolment.birthday,
        email_consent_at=now if enrolment.email_consent else None,
        sms_consent_at=now if enrolment.sms_consent else None,
        acquisition_source=enrolment.acquisition_source,
        status=MemberStatus.ACTIVE,
        enrolled_store_id=store_id,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    session.flush()
    for channel, given in (
        (ConsentChannel.EMAIL, enrolment.email_consent),
        (ConsentChannel.SMS, enrolment.sms_consent),
    ):
        if given:
            _record_consent(session, member.id, channel, granted=True, source=actor, now=now)
    return member


def refuse_taken_contacts(
    session: Session, email: str | None, phone: str | None, *, except_member: int | None = None
) -> None:
    clauses = []
    if email:
        clauses.append(Member.email == email)
    if phone:
        clauses.append(Member.phone == phone)
    if not clauses:
        return
    query = select(Member).where(or_(*clauses), Member.status != MemberStatus.ERASED)
    if except_member is not None:
        query = query.where(Member.id != except_member)
    taken = session.scalars(query).first()
    if taken is not None:
        field = "email" if email and taken.email == email else "phone"
        raise ContactTaken(f"another member already uses this {field}", field=field)


def get_member(session: Session, member_id: int, *, lock: bool = False) -> Member:
    """The member (not erased). With `lock`, their row is locked until the transaction ends, so
    a change that depends on their status cannot race another (PostgreSQL; SQLite's write lock
    already serialises writers)."""
    if not 0 < member_id <= MAX_ID:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    member = session.get(Member, member_id, with_for_update=lock, populate_existing=lock)
    if member is None or member.status == MemberStatus.ERASED:
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    return member


def enrolled_store_of(session: Session, member_id: int) -> int | None:
    """The store the member enrolled at (None: online, or no such member)."""
    return session.scalar(select(Member.enrolled_store_id).where(Member.id == member_id))


class Keep(Enum):
    """A field a change leaves as it is (None would clear it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class MemberChanges:
    """What `update_member` changes; every field left at KEEP stays as it is. None clears an
    optional field (an email, a phone, a birthday)."""

    name: str | Keep = KEEP
    email: str | Keep | None = KEEP
    phone: str | Keep | None = KEEP
    birthday: date | Keep | None = KEEP
    email_consent: bool | Keep = KEEP
    sms_consent: bool | Keep = KEEP

    def named(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not KEEP
        }


def _new_contact(value: str | Keep | None, current: str | None, normalise: Any) -> str | None:
    if value is KEEP:
        return current
    return normalise(value) if value else None


def update_member(
    session: Session,
    member_id: int,
    changes: MemberChanges,
    *,
    phone_region: str,
    actor: str,
    now: datetime,
) -> Member:
    """Change a member's name, contacts, birthday or consents. A contact another member holds
    is refused; removing a contact withdraws the consent that needed it. Every consent change
    is recorded with its time and `actor`; the audit log names the fields changed (not their
    values: the audit log is kept after an erasure, personal data is not)."""
    named = changes.named()
    if not named:
        raise InvalidInput("name at least one field to change", field="_body")
    member = get_member(session, member_id, lock=True)
    email = _new_contact(changes.email, member.email, normalise_email)
    phone = _new_contact(
        changes.phone, member.phone, lambda text: normalise_phone(text, phone_region)
    )
    wanted = {
        ConsentChannel.EMAIL: member.email_consent_at is not None
        if changes.email_consent is KEEP
        else changes.email_consent,
        ConsentChannel.SMS: member.sms_consent_at is not None
        if changes.sms_consent is KEEP
        else changes.sms_consent,
    }
    explicit = {"email_consent", "sms_consent"} & named.keys()
    # A contact removed takes its consent with it, unless the request also asks for the consent
    # (which is then refused below as a consent without a contact).
    if email is None and "email_consent" not in explicit:
        wanted[ConsentChannel.EMAIL] = False
    if phone is None and "sms_consent" not in explicit:
        wanted[ConsentChannel.SMS] = False
    _consents_need_contacts(
        email,
        phone,
        email_consent=bool(wanted[ConsentChannel.EMAIL]),
        sms_consent=bool(wanted[ConsentChannel.SMS]),
    )
    if changes.birthday is not KEEP:
        _check_birthday(changes.birthday, now)
    refuse_taken_contacts(
        session,
        email if email != member.email else None,
        phone if phone != member.phone else None,
        except_member=member.id,
    )
    changed = _apply(member, changes, email=email, phone=phone)
    for channel, column in (
        (ConsentChannel.EMAIL, "email_consent_at"),
        (ConsentChannel.SMS, "sms_consent_at"),
    ):
        had = getattr(member, column) is not None
        if bool(wanted[channel]) != had:
            setattr(member, column, now if wanted[channel] else None)
            _record_consent(
                session, member.id, channel, granted=bool(wanted[channel]), source=actor, now=now
            )
            changed.append(f"{channel}_consent")
    if changed:
        member.updated_at = now
        record(
            session,
            actor=actor,
            action="member.update",
            subject_type="member",
            subject_id=member.id,
            now=now,
            changed=sorted(changed),
        )
    session.flush()
    return member


def _apply(
    member: Member, changes: MemberChanges, *, email: str | None, phone: str | None
) -> list[str]:
    """Set the plain fields that differ; the names of those changed."""
    changed = []
    new_values: dict[str, Any] = {"email": email, "phone": phone}
    if changes.name is not KEEP:
        new_values["name"] = _clean_name(changes.name)
    if changes.birthday is not KEEP:
        new_values["birthday"] = changes.birthday
    for name, value in new_values.items():
        if getattr(member, name) != value:
            setattr(member, name, value)
            changed.append(name)
    return changed


def consent_history(session: Session, member_id: int) -> list[ConsentEvent]:
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.member_id == member_id)
            .order_by(ConsentEvent.id)
        )
    )


@dataclass(frozen=True)
class MemberSearch:
    """Staff look-up: every given criterion must match. `name` matches the start of the name,
    ignoring case; contacts are normalised as at enrolment."""

    email: str | None = None
    phone: str | None = None
    card_number: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class MemberPage:
    members: list[Member]
    next_cursor: int | None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_members(
    session: Session,
    search: MemberSearch,
    *,
    phone_region: str,
    after_id: int | None,
    limit: int,
) -> MemberPage:
    """Members matching `search`, by id (keyset paging: pass `next_cursor` back as `after_id`).
    Erased members are never found."""
    query = select(Member).where(Member.status != MemberStatus.ERASED)
    if search.email:
        query = query.where(Member.email == normalise_email(search.email))
    if search.phone:
        query = query.where(Member.phone == normalise_phone(search.phone, phone_region))
    if search.card_number:
        number = strip_separators(search.card_number)
        query = query.where(Member.id.in_(select(Card.member_id).where(Card.number == number)))
    if search.name:
        prefix = _escape_like(search.name.strip().lower())
        query = query.where(Member.name.ilike(f"{prefix}%", escape="\\"))
    if after_id is not None:
        query = query.where(Member.id > after_id)
    found = list(session.scalars(query.order_by(Member.id).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    return MemberPage(found, found[-1].id if more else None)


def set_blocked(
    session: Session, *, member_id: int, blocked: bool, reason: str, actor: str, now: datetime
) -> Member:
    """Block a member (fraud, abuse) or lift the block. A blocked member is refused at every
    till, and their email and phone stay reserved so they cannot simply enrol again. A member
    already so is left as they are (no second entry in the audit log)."""
    member = get_member(session, member_id, lock=True)
    before = member.status
    member.status = MemberStatus.BLOCKED if blocked else MemberStatus.ACTIVE
    if member.status == before:
        return member
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
    member = get_member(session, member_id, lock=True)
    for channel, column in (
        (ConsentChannel.EMAIL, "email_consent_at"),
        (ConsentChannel.SMS, "sms_consent_at"),
    ):
        if getattr(member, column) is not None:
            _record_consent(session, member.id, channel, granted=False, source=actor, now=now)
    member.name = ERASED_NAME
    member.email = None
    member.phone = None
    member.birthday = None
    member.email_consent_at = None
    member.sms_consent_at = None
    member.status = MemberStatus.ERASED
    forget_member(session, member.id)
    member.updated_at = now
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
