"""Friend brings friend: a member's code and link, the referral recorded when a friend enrols
with it (or refused, with a reason, by the fraud guards), both sides rewarded at the friend's
first qualifying purchase, the rewards taken back when that purchase is fully returned in time,
and the funnel.

Referrals never post points or issue coupons themselves: the caller passes `reward` and
`take_back` (the ledger or the coupons do the work), so this package imports neither and sits
below the use cases that join them (enrolment, checkout).

Choices where the brief left one:
- A referee has one referral, whatever its fate: the first code they enrolled with decides.
- The monthly cap counts the referrals recorded for the referrer in the calendar month (the
  program's time zone) that were not refused, checked and kept when the friend enrols, under
  a lock of the referrer's code row. A reversed referral still counts.
- The qualifying window is fixed when the friend enrols; the minimum purchase and the rewards
  are the terms in force at the purchase; the reversal window is fixed when it qualifies.
- The program funnel is a cohort: the referrals recorded in the period and what became of
  them; "invited" is the link opens in the period.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import column as sql_column
from sqlalchemy import func, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.models import Card
from loyalty.cards.numbers import strip_separators
from loyalty.clock import as_utc
from loyalty.db import MAX_ID, unique_violation, upsert_insert
from loyalty.errors import InvalidInput
from loyalty.members.errors import UnknownMember
from loyalty.members.models import Member, MemberStatus
from loyalty.members.services import get_member
from loyalty.program import get_program
from loyalty.referrals.models import (
    SETTINGS_ID,
    ContactKind,
    MemberReferralCode,
    Referral,
    ReferralContact,
    ReferralLinkOpen,
    ReferralPaymentFingerprint,
    ReferralSettings,
    ReferralStatus,
    RefusalReason,
)
from loyalty.settings import derived_key
from loyalty.stores.access import TillViewer

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
CODE_LENGTH = 8
LINK_PREFIX = "/join/"
CHAIN_DEPTH = 10  # how far up the chain of referrers a circular referral is looked for
MAX_TYPED_CODE = 32
_CODE_ATTEMPTS = 5
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
_SEPARATORS = re.compile(r"[\s\-_]+")
_GMAIL = frozenset({"gmail.com", "googlemail.com"})

RewardHook = Callable[[int, int, int | None, str], None]
"""`(member_id, points, offer_id, reason)`, called once per side: `points` > 0 with no offer,
or `offer_id` (a coupon of that offer) with 0 points. `reward` posts or issues it; `take_back`
removes exactly that again."""


# The terms


@dataclass(frozen=True)
class ReferralTerms:
    """The program's referral terms; these defaults until staff change them."""

    enabled: bool = True
    min_purchase: int = 1000  # minor units, of what the friend kept (returns deducted)
    qualify_within_days: int = 30
    referrer_points: int = 500
    referee_points: int = 250
    referrer_offer_id: int | None = None  # a coupon of this offer instead of points
    referee_offer_id: int | None = None
    monthly_cap: int | None = 10  # referrals per referrer per calendar month; None: no cap
    reversal_window_days: int = 30

    def reward_of(self, *, referrer: bool) -> tuple[int, int | None]:
        """(points, offer id) one side is given: a coupon when an offer is set, else points."""
        offer_id = self.referrer_offer_id if referrer else self.referee_offer_id
        if offer_id is not None:
            return 0, offer_id
        return (self.referrer_points if referrer else self.referee_points), None


_TERMS = [f.name for f in fields(ReferralTerms)]
_MAX_POINTS = 10**9
_MAX_MINOR = 10**10
_MAX_DAYS = 3650
# field -> (smallest, largest, may be None)
_RANGES: dict[str, tuple[int, int, bool]] = {
    "min_purchase": (0, _MAX_MINOR, False),
    "qualify_within_days": (1, _MAX_DAYS, False),
    "referrer_points": (0, _MAX_POINTS, False),
    "referee_points": (0, _MAX_POINTS, False),
    "referrer_offer_id": (1, MAX_ID, True),
    "referee_offer_id": (1, MAX_ID, True),
    "monthly_cap": (1, 1_000_000, True),
    "reversal_window_days": (0, _MAX_DAYS, False),
}


def terms_problems(changes: Mapping[str, Any]) -> dict[str, list[str]]:
    """What is wrong with these changes of the terms, by field (empty: nothing)."""
    problems: dict[str, list[str]] = {}
    for name in sorted(changes.keys() - set(_TERMS)):
        problems[name] = ["not a referral setting"]
    for name, value in changes.items():
        if name == "enabled":
            if not isinstance(value, bool):
                problems[name] = ["true or false"]
            continue
        if name not in _RANGES:
            continue
        low, high, nullable = _RANGES[name]
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems[name] = [f"a whole number from {low} to {high}" + (", or null" * nullable)]
    return problems


# Codes, contacts and fingerprints: pure functions


def new_code(choose: Callable[[str], str] = secrets.choice) -> str:
    return "".join(choose(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """A code as typed or read from a link: capitals, no spaces or dashes, look-alikes (O, I,
    L, U) read as the character of the alphabet they are mistaken for."""
    return _SEPARATORS.sub("", text).upper().translate(_LOOK_ALIKES)[:MAX_TYPED_CODE]


def is_well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(char in ALPHABET for char in code)


def canonical_email(email: str) -> str:
    """An email as the fraud checks compare it: lower case, without a `+tag`, and for Gmail
    without dots (which Gmail ignores), so `Mary.S+ref@gmail.com` is `marys@gmail.com`."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def canonical_phone(phone: str) -> str:
    """A phone number (E.164, as members store it) as digits with its plus."""
    return "".join(char for char in phone if char.isdigit() or char == "+")


def contact_digest(key: str, kind: ContactKind, value: str) -> str:
    canonical = canonical_email(value) if kind == ContactKind.EMAIL else canonical_phone(value)
    message = f"{kind.value}:{canonical}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def contact_digests(
    key: str, *, emails: Iterable[str | None], phones: Iterable[str | None]
) -> set[str]:
    found = {contact_digest(key, ContactKind.EMAIL, e) for e in emails if e}
    return found | {contact_digest(key, ContactKind.PHONE, p) for p in phones if p}


def payment_digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.strip().encode()).hexdigest()


def contact_key(secret_key: str) -> str:
    """The key of the contact digests, derived from LOYALTY_SECRET_KEY (never the key itself).
    A new secret key means new digests: contacts remembered under the old one no longer match
    (run `loyalty referrals remember-contacts` again for the members still there)."""
    return derived_key(secret_key, "referral contacts")


def is_circular(
    referee_id: int, referrer_id: int, referrer_of: Callable[[int], int | None], depth: int
) -> bool:
    """Whether `referee_id` is up the chain of who referred `referrer_id` (at most `depth`
    steps up)."""
    current: int | None = referrer_id
    for _ in range(depth):
        current = referrer_of(current) if current is not None else None
        if current is None:
            return False
        if current == referee_id:
            return True
    return False


def month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of `now`'s calendar month in `zone`, in UTC."""
    local = as_utc(now).astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)


def day_bounds(since: date, until: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `since`, start of the day after `until`) in `zone`, in UTC."""
    start = datetime.combine(since, time(), tzinfo=zone)
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# Results


@dataclass(frozen=True)
class ReferralCode:
    code: str
    link_path: str


@dataclass(frozen=True)
class Fingerprints:
    """What enrolment saw of the new member, compared with the referrer's: their contacts (as
    stored: normalised), a card number they showed and a payment fingerprint from the POS."""

    email: str | None = None
    phone: str | None = None
    card_number: str | None = None
    payment_fingerprint: str | None = None


@dataclass(frozen=True)
class ReferralOutcome:
    """What `record_referral` decided. A refusal never stops the enrolment."""

    status: str  # pending or refused
    reason: str | None
    referral_id: int | None  # the one recorded; for already_referred the friend's earlier one
    referrer_id: int | None  # None when the code was nobody's (or already_referred)

    @property
    def accepted(self) -> bool:
        return self.status == ReferralStatus.PENDING


@dataclass(frozen=True)
class RewardGiven:
    referral_id: int
    referrer_id: int
    referee_id: int
    sale_id: int
    referrer_points: int
    referee_points: int
    referrer_offer_id: int | None
    referee_offer_id: int | None


@dataclass(frozen=True)
class ReferralView:
    id: int
    referrer_id: int | None
    referee_id: int
    code: str
    status: str
    reason: str | None
    created_at: datetime
    qualify_by: datetime
    qualified_sale_id: int | None
    qualified_at: datetime | None
    rewarded_at: datetime | None
    referrer_points: int
    referee_points: int
    referrer_offer_id: int | None
    referee_offer_id: int | None
    reversible_until: datetime | None
    reversed_at: datetime | None


@dataclass(frozen=True)
class ReferralPage:
    referrals: tuple[ReferralView, ...]
    next_cursor: int | None


@dataclass(frozen=True)
class Funnel:
    """invited (link opens) → enrolled (friends who enrolled with the code, refused ones
    included) → qualified (made the qualifying purchase) → rewarded → reversed; `pending` are
    waiting for their purchase, `refused` counts refusals by reason."""

    invited: int = 0
    enrolled: int = 0
    pending: int = 0
    qualified: int = 0
    rewarded: int = 0
    reversed: int = 0
    refused: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PeriodFunnel:
    since: date
    until: date
    timezone: str
    funnel: Funnel


@dataclass(frozen=True)
class OwnReferral:
    """How the member's own referral (as the friend) stands."""

    status: str
    reason: str | None
    qualify_by: datetime


@dataclass(frozen=True)
class MemberReferral:
    member_id: int
    code: str
    link_path: str
    funnel: Funnel
    joined_through: OwnReferral | None


def view_of(referral: Referral) -> ReferralView:
    return ReferralView(**{f.name: getattr(referral, f.name) for f in fields(ReferralView)})


# Settings


def referral_settings(session: Session) -> ReferralTerms:
    row = session.get(ReferralSettings, SETTINGS_ID)
    if row is None:
        return ReferralTerms()
    return ReferralTerms(**{name: getattr(row, name) for name in _TERMS})


_offers = table("offers", sql_column("id"))


def _missing_offers(session: Session, changes: Mapping[str, Any]) -> dict[str, list[str]]:
    missing = {}
    for name in ("referrer_offer_id", "referee_offer_id"):
        offer_id = changes.get(name)
        if (
            offer_id is not None
            and session.scalar(select(_offers.c.id).where(_offers.c.id == offer_id)) is None
        ):
            missing[name] = [f"no offer has id {offer_id}"]
    return missing


def _locked_settings(session: Session, now: datetime) -> ReferralSettings:
    """The settings row, locked; made with the defaults when there is none yet."""
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(ReferralSettings)
        .values(id=SETTINGS_ID, updated_at=now, **asdict(ReferralTerms()))
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return session.get_one(
        ReferralSettings, SETTINGS_ID, with_for_update=True, populate_existing=True
    )


def update_settings(
    session: Session, changes: Mapping[str, Any], *, actor: str, now: datetime
) -> ReferralTerms:
    """Change the referral terms (audited with before and after). Referrals already recorded
    keep their qualifying window; those already rewarded keep what they were given."""
    if not changes:
        raise InvalidInput("name at least one setting to change", field="_body")
    problems = terms_problems(changes)
    problems |= _missing_offers(session, {k: v for k, v in changes.items() if k not in problems})
    if problems:
        raise InvalidInput("the settings have invalid fields: see errors", errors=problems)
    row = _locked_settings(session, now)
    before = {name: getattr(row, name) for name in changes}
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    record(
        session,
        actor=actor,
        action="referral_settings.update",
        subject_type="referral_settings",
        subject_id=SETTINGS_ID,
        now=now,
        before=before,
        after=dict(changes),
    )
    session.flush()
    return referral_settings(session)


# Codes and links


def _code_view(code: str) -> ReferralCode:
    return ReferralCode(code=code, link_path=f"{LINK_PREFIX}{code}")


def _code_of(session: Session, member_id: int) -> str | None:
    return session.scalar(
        select(MemberReferralCode.code).where(MemberReferralCode.member_id == member_id)
    )


def referral_code_of(session: Session, member_id: int, now: datetime) -> ReferralCode:
    """The member's code and link, made the first time it is asked for (concurrent first asks
    get the same code)."""
    existing = _code_of(session, member_id)
    if existing is not None:
        return _code_view(existing)
    get_member(session, member_id)
    insert = upsert_insert(session.get_bind().dialect.name)
    for _ in range(_CODE_ATTEMPTS):
        session.execute(
            insert(MemberReferralCode)
            .values(member_id=member_id, code=new_code(), created_at=now)
            .on_conflict_do_nothing()
        )
        made = _code_of(session, member_id)
        if made is not None:  # ours, or one made meanwhile by a concurrent ask
            return _code_view(made)
    msg = "no free referral code after several draws"  # 32**8 codes: never in practice
    raise RuntimeError(msg)


def _referrer_by_code(session: Session, code: str) -> int | None:
    """The member whose code this is, when they are active; their code row locked, so the
    referrals made with one code are decided one at a time."""
    if not is_well_formed(code):
        return None
    member_id = session.scalar(
        select(MemberReferralCode.member_id)
        .where(MemberReferralCode.code == code)
        .with_for_update()
    )
    if member_id is None:
        return None
    status = session.scalar(select(Member.status).where(Member.id == member_id))
    return member_id if status == MemberStatus.ACTIVE else None


def link_opened(session: Session, code: str, now: datetime) -> bool:
    """Count an open of the member's link (the funnel's "invited"); False for a code that is
    nobody's."""
    typed = normalise_code(code)
    if not is_well_formed(typed):
        return False
    member_id = session.scalar(
        select(MemberReferralCode.member_id).where(MemberReferralCode.code == typed)
    )
    if member_id is None:
        return False
    day = as_utc(now).astimezone(get_program(session).zone).date()
    insert = upsert_insert(session.get_bind().dialect.name)
    statement = insert(ReferralLinkOpen).values(member_id=member_id, day=day, opened=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["member_id", "day"],
            set_={"opened": ReferralLinkOpen.opened + 1},
        )
    )
    return True


# What the fraud guards remember


def remember_contacts(
    session: Session,
    *,
    member_id: int,
    email: str | None,
    phone: str | None,
    key: str,
    now: datetime,
) -> None:
    """Keep keyed digests of a member's contacts (at enrolment, and whenever they change), so a
    former member enrolling again with a friend's code is seen, even after an erasure."""
    digests = [
        (kind, contact_digest(key, kind, value))
        for kind, value in ((ContactKind.EMAIL, email), (ContactKind.PHONE, phone))
        if value
    ]
    if not digests:
        return
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(ReferralContact)
        .values(
            [
                {"digest": digest, "kind": kind.value, "member_id": member_id, "created_at": now}
                for kind, digest in digests
            ]
        )
        .on_conflict_do_nothing(index_elements=["digest", "member_id"])
    )


def remember_existing_contacts(
    session: Session, key: str, now: datetime, *, batch: int = 1000
) -> int:
    """Remember the contacts of every member not erased (members who enrolled before
    referrals existed; running it twice adds nothing). How many members were read."""
    seen, after = 0, 0
    while True:
        rows = session.execute(
            select(Member.id, Member.email, Member.phone)
            .where(Member.id > after, Member.status != MemberStatus.ERASED)
            .order_by(Member.id)
            .limit(batch)
        ).all()
        for member_id, email, phone in rows:
            remember_contacts(
                session, member_id=member_id, email=email, phone=phone, key=key, now=now
            )
        seen += len(rows)
        if len(rows) < batch:
            return seen
        after = rows[-1].id


def _remember_payment(session: Session, member_id: int, fingerprint: str, now: datetime) -> None:
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(ReferralPaymentFingerprint)
        .values(member_id=member_id, digest=payment_digest(fingerprint), first_seen_at=now)
        .on_conflict_do_nothing(index_elements=["member_id", "digest"])
    )


def _paid_like(session: Session, member_id: int, fingerprint: str | None) -> bool:
    if not fingerprint:
        return False
    return (
        session.get(ReferralPaymentFingerprint, (member_id, payment_digest(fingerprint)))
        is not None
    )


# Recording a referral: the fraud guards


@dataclass(frozen=True)
class _Candidate:
    """A friend enrolling with a referrer's code, as the guards look at them."""

    session: Session
    referee: Member
    referrer_id: int
    fingerprints: Fingerprints
    digests: frozenset[str]  # of the friend's contacts
    key: str
    terms: ReferralTerms
    now: datetime


def _same_as_advocate(c: _Candidate) -> bool:
    """The friend is the referrer: the same member, or one of their contacts (now or ever
    remembered), card numbers or payment fingerprints."""
    if c.referrer_id == c.referee.id:
        return True
    referrer = c.session.get_one(Member, c.referrer_id)
    theirs = contact_digests(c.key, emails=[referrer.email], phones=[referrer.phone])
    theirs |= set(
        c.session.scalars(
            select(ReferralContact.digest).where(ReferralContact.member_id == c.referrer_id)
        )
    )
    if c.digests & theirs:
        return True
    card = c.fingerprints.card_number
    if card and c.session.scalar(
        select(Card.id).where(
            Card.member_id == c.referrer_id, Card.number == strip_separators(card)
        )
    ):
        return True
    return _paid_like(c.session, c.referrer_id, c.fingerprints.payment_fingerprint)


def _already_member(c: _Candidate) -> bool:
    """Another member (erased ones too) enrolled with one of the friend's contacts before."""
    if not c.digests:
        return False
    earlier = select(ReferralContact.member_id).where(
        ReferralContact.digest.in_(c.digests), ReferralContact.member_id != c.referee.id
    )
    return c.session.scalar(earlier.limit(1)) is not None


def _referrer_of(session: Session, member_id: int) -> int | None:
    return session.scalar(
        select(Referral.referrer_id).where(
            Referral.referee_id == member_id, Referral.status != ReferralStatus.REFUSED
        )
    )


def _circular(c: _Candidate) -> bool:
    return is_circular(
        c.referee.id, c.referrer_id, lambda m: _referrer_of(c.session, m), CHAIN_DEPTH
    )


def _cap_reached(c: _Candidate) -> bool:
    if c.terms.monthly_cap is None:
        return False
    since = month_start(c.now, get_program(c.session).zone)
    count = c.session.scalar(
        select(func.count()).where(
            Referral.referrer_id == c.referrer_id,
            Referral.created_at >= since,
            Referral.status != ReferralStatus.REFUSED,
        )
    )
    return int(count or 0) >= c.terms.monthly_cap


_GUARDS: tuple[tuple[RefusalReason, Callable[[_Candidate], bool]], ...] = (
    (RefusalReason.SAME_AS_ADVOCATE, _same_as_advocate),
    (RefusalReason.ALREADY_MEMBER, _already_member),
    (RefusalReason.CIRCULAR, _circular),
    (RefusalReason.CAP_REACHED, _cap_reached),
)


def _insert_once(session: Session, referral: Referral) -> bool:
    """Add the referral; False when the referee has one already (a concurrent enrolment)."""
    try:
        with session.begin_nested():
            session.add(referral)
    except IntegrityError as exc:
        violation = unique_violation(exc)
        if violation is not None and violation.table == Referral.__tablename__:
            return False
        raise
    return True


def _already_referred(referral_id: int | None) -> ReferralOutcome:
    return ReferralOutcome(
        ReferralStatus.REFUSED, RefusalReason.ALREADY_REFERRED, referral_id, None
    )


def _decide(
    session: Session,
    referee: Member,
    referrer_id: int | None,
    *,
    terms: ReferralTerms,
    fingerprints: Fingerprints,
    contact_key: str,
    now: datetime,
) -> RefusalReason | None:
    """Why the referral is refused, or None: it is accepted."""
    if not terms.enabled:
        return RefusalReason.DISABLED
    if referrer_id is None:
        return RefusalReason.UNKNOWN_CODE
    digests = contact_digests(
        contact_key,
        emails=[referee.email, fingerprints.email],
        phones=[referee.phone, fingerprints.phone],
    )
    candidate = _Candidate(
        session, referee, referrer_id, fingerprints, frozenset(digests), contact_key, terms, now
    )
    return next((reason for reason, refused in _GUARDS if refused(candidate)), None)


def record_referral(
    session: Session,
    *,
    referee_id: int,
    code: str,
    now: datetime,
    fingerprints: Fingerprints,
    contact_key: str,
) -> ReferralOutcome:
    """The friend `referee_id` enrolled with `code`: a pending referral, or a refused one with
    its reason (`disabled`, `unknown_code`, `same_as_advocate`, `already_member`, `circular`,
    `cap_reached`). `already_referred` (the friend has a referral already) records nothing
    new. Never raises for a refusal: the enrolment goes on either way."""
    referee = get_member(session, referee_id)
    existing = session.scalar(select(Referral.id).where(Referral.referee_id == referee_id))
    if existing is not None:
        return _already_referred(existing)
    terms = referral_settings(session)
    typed = normalise_code(code)
    referrer_id = _referrer_by_code(session, typed)
    reason = _decide(
        session,
        referee,
        referrer_id,
        terms=terms,
        fingerprints=fingerprints,
        contact_key=contact_key,
        now=now,
    )
    referral = Referral(
        referee_id=referee_id,
        referrer_id=referrer_id,
        code=typed,
        status=ReferralStatus.PENDING if reason is None else ReferralStatus.REFUSED,
        reason=reason,
        created_at=now,
        qualify_by=now + timedelta(days=terms.qualify_within_days),
        referrer_points=0,
        referee_points=0,
    )
    if not _insert_once(session, referral):
        return _already_referred(None)
    if fingerprints.payment_fingerprint:
        _remember_payment(session, referee_id, fingerprints.payment_fingerprint, now)
    return ReferralOutcome(referral.status, reason, referral.id, referrer_id)


# Qualifying, rewarding, reversing


def _pending_of(session: Session, member_id: int) -> Referral | None:
    return session.scalars(
        select(Referral)
        .where(Referral.referee_id == member_id, Referral.status == ReferralStatus.PENDING)
        .with_for_update()
    ).first()


def _is_active(session: Session, member_id: int) -> bool:
    status = session.scalar(select(Member.status).where(Member.id == member_id))
    return status == MemberStatus.ACTIVE


def _give_side(
    reward: RewardHook, member_id: int, terms: ReferralTerms, *, referrer: bool, reason: str
) -> tuple[int, int | None]:
    """Give one side what the terms say; (points, offer id) given, (0, None) for nothing."""
    points, offer_id = terms.reward_of(referrer=referrer)
    if points or offer_id is not None:
        reward(member_id, points, offer_id, reason)
    return points, offer_id


def _give(
    referral: Referral, terms: ReferralTerms, reward: RewardHook, *, referrer_active: bool
) -> None:
    """Reward each side as the terms say now (a referrer blocked or erased meanwhile gets
    nothing), and keep what each was given."""
    if referral.referrer_id is not None and referrer_active:
        referral.referrer_points, referral.referrer_offer_id = _give_side(
            reward,
            referral.referrer_id,
            terms,
            referrer=True,
            reason=f"referral {referral.id}: a friend's first purchase",
        )
    referral.referee_points, referral.referee_offer_id = _give_side(
        reward,
        referral.referee_id,
        terms,
        referrer=False,
        reason=f"referral {referral.id}: joined through a friend",
    )


def _given(referral: Referral, referrer_id: int, sale_id: int) -> RewardGiven:
    return RewardGiven(
        referral_id=referral.id,
        referrer_id=referrer_id,
        referee_id=referral.referee_id,
        sale_id=sale_id,
        referrer_points=referral.referrer_points,
        referee_points=referral.referee_points,
        referrer_offer_id=referral.referrer_offer_id,
        referee_offer_id=referral.referee_offer_id,
    )


def on_sale(
    session: Session,
    *,
    member_id: int,
    sale_id: int,
    kept_total: int,
    occurred_at: datetime,
    payment_fingerprint: str | None,
    now: datetime,
    reward: RewardHook,
) -> RewardGiven | None:
    """A member's sale was recorded: remember its payment fingerprint, and if the member is a
    friend whose referral is pending and the sale qualifies (kept total at least the minimum,
    within the window), reward both sides. Paid with the referrer's payment card: refused
    (`same_as_advocate`), nobody rewarded. None when nothing was given."""
    if payment_fingerprint:
        _remember_payment(session, member_id, payment_fingerprint, now)
    referral = _pending_of(session, member_id)
    if referral is None or referral.referrer_id is None:
        return None
    terms = referral_settings(session)
    occurred = as_utc(occurred_at)
    if not terms.enabled or kept_total < terms.min_purchase or occurred > referral.qualify_by:
        return None
    referral.qualified_sale_id, referral.qualified_at = sale_id, occurred
    if _paid_like(session, referral.referrer_id, payment_fingerprint):
        referral.status, referral.reason = ReferralStatus.REFUSED, RefusalReason.SAME_AS_ADVOCATE
        session.flush()
        return None
    _give(referral, terms, reward, referrer_active=_is_active(session, referral.referrer_id))
    referral.status, referral.rewarded_at = ReferralStatus.REWARDED, now
    referral.reversible_until = occurred + timedelta(days=terms.reversal_window_days)
    session.flush()
    return _given(referral, referral.referrer_id, sale_id)


def on_full_return(session: Session, *, sale_id: int, now: datetime, take_back: RewardHook) -> bool:
    """The sale was fully returned or voided: when it qualified a referral and the reversal
    window is still open, take back what each side was given; the referral is `reversed`.
    True when rewards were taken back (a second call finds nothing to do)."""
    referral = session.scalars(
        select(Referral)
        .where(Referral.qualified_sale_id == sale_id, Referral.status == ReferralStatus.REWARDED)
        .with_for_update()
    ).first()
    if referral is None or referral.reversible_until is None:
        return False
    if as_utc(now) > referral.reversible_until:
        return False
    reason = f"referral {referral.id}: the qualifying purchase was returned"
    sides = (
        (referral.referrer_id, referral.referrer_points, referral.referrer_offer_id),
        (referral.referee_id, referral.referee_points, referral.referee_offer_id),
    )
    for member_id, points, offer_id in sides:
        if member_id is not None and (points or offer_id is not None):
            take_back(member_id, points, offer_id, reason)
    referral.status, referral.reversed_at = ReferralStatus.REVERSED, now
    session.flush()
    return True


# Reading: the funnel, a member's referral, the staff list


def _funnel(session: Session, *, invited: int, where: list[Any]) -> Funnel:
    rows = session.execute(
        select(
            Referral.status,
            Referral.reason,
            func.count(),
            func.count(Referral.qualified_sale_id),
            func.count(Referral.rewarded_at),
        )
        .where(*where)
        .group_by(Referral.status, Referral.reason)
    ).all()
    by_status: dict[str, int] = {}
    refused: dict[str, int] = {}
    qualified = rewarded = 0
    for status, reason, count, with_sale, with_reward in rows:
        by_status[status] = by_status.get(status, 0) + count
        if status == ReferralStatus.REFUSED and reason:
            refused[reason] = refused.get(reason, 0) + count
        qualified += with_sale
        rewarded += with_reward
    return Funnel(
        invited=invited,
        enrolled=sum(by_status.values()),
        pending=by_status.get(ReferralStatus.PENDING, 0),
        qualified=qualified,
        rewarded=rewarded,
        reversed=by_status.get(ReferralStatus.REVERSED, 0),
        refused=dict(sorted(refused.items())),
    )


def member_funnel(session: Session, member_id: int) -> Funnel:
    """The funnel of the friends `member_id` brought, since the start."""
    invited = session.scalar(
        select(func.coalesce(func.sum(ReferralLinkOpen.opened), 0)).where(
            ReferralLinkOpen.member_id == member_id
        )
    )
    return _funnel(session, invited=int(invited or 0), where=[Referral.referrer_id == member_id])


def program_funnel(session: Session, since: date, until: date) -> PeriodFunnel:
    """The programme's funnel over the days `since` to `until` (both included, in the
    program's time zone): link opens on those days, and the referrals recorded on them with
    what became of them since."""
    if since > until:
        raise InvalidInput("`since` is after `until`", field="since")
    zone = get_program(session).zone
    start, end = day_bounds(since, until, zone)
    invited = session.scalar(
        select(func.coalesce(func.sum(ReferralLinkOpen.opened), 0)).where(
            ReferralLinkOpen.day >= since, ReferralLinkOpen.day <= until
        )
    )
    funnel = _funnel(
        session,
        invited=int(invited or 0),
        where=[Referral.created_at >= start, Referral.created_at < end],
    )
    return PeriodFunnel(since=since, until=until, timezone=zone.key, funnel=funnel)


def referral_of(session: Session, referee_id: int) -> ReferralView | None:
    """The referral of the friend `referee_id`, if they enrolled with a code."""
    found = session.scalars(select(Referral).where(Referral.referee_id == referee_id)).first()
    return None if found is None else view_of(found)


def member_referral(
    session: Session, member_id: int, *, now: datetime, viewer: TillViewer | None = None
) -> MemberReferral:
    """A member's code and link (made on the first ask), the funnel of the friends they
    brought, and how their own referral stands. A till asks about members it may read."""
    member = get_member(session, member_id)
    if viewer is not None and not viewer.sees(member.id, member.enrolled_store_id):
        raise UnknownMember(f"no member has id {member_id}", field="member_id")
    code = referral_code_of(session, member_id, now)
    own = referral_of(session, member_id)
    return MemberReferral(
        member_id=member_id,
        code=code.code,
        link_path=code.link_path,
        funnel=member_funnel(session, member_id),
        joined_through=None if own is None else OwnReferral(own.status, own.reason, own.qualify_by),
    )


def list_referrals(
    session: Session, *, status: str | None, before_id: int | None, limit: int
) -> ReferralPage:
    """Referrals newest first, optionally of one status (keyset pages: pass `next_cursor`
    back as `before_id`)."""
    if status is not None and status not in set(ReferralStatus):
        raise InvalidInput(
            f"a status is one of: {', '.join(s.value for s in ReferralStatus)}", field="status"
        )
    query = select(Referral)
    if status is not None:
        query = query.where(Referral.status == status)
    if before_id is not None:
        query = query.where(Referral.id < before_id)
    found = list(session.scalars(query.order_by(Referral.id.desc()).limit(limit + 1)))
    page = tuple(view_of(referral) for referral in found[:limit])
    return ReferralPage(page, page[-1].id if len(found) > limit else None)


def pending_referral(member_id: Any) -> Any:
    """Whether the member is a friend whose referral waits for a qualifying purchase: a column
    for the till's identify query, so a sale asks about referrals only when it may qualify."""
    return (
        select(Referral.id)
        .where(Referral.referee_id == member_id, Referral.status == ReferralStatus.PENDING)
        .exists()
    )
