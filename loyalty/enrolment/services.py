"""Joining the programme: the member's record, their points account, a card (a pre-printed one
handed over, or a new one) and the sign-up bonuses, in one unit of work. It meets members,
cards, the ledger and the rules, so it sits above all of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.services import CardView, activate_card, card_view, issue_card
from loyalty.idempotency import Idempotency, once
from loyalty.ledger.models import EntryKind
from loyalty.ledger.services import credit, open_account
from loyalty.members.models import Member
from loyalty.members.services import Enrolment, register
from loyalty.profiles.services import MemberProfile, profile_of, visible_member
from loyalty.program import get_program
from loyalty.referrals.services import Fingerprints, record_referral, remember_contacts
from loyalty.results import Outcome
from loyalty.rules.engine import EarnContext, RuleKind, signup_points
from loyalty.rules.pricing import default_rate
from loyalty.rules.services import live_rules, record_awards
from loyalty.settings import LookupKeys
from loyalty.stores.access import TillViewer


def enrol(
    session: Session,
    enrolment: Enrolment,
    *,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    store_id: int | None = None,
    store_code: str | None = None,
) -> MemberProfile:
    """Enrol a member (at a till of `store_id`, or online): the new member as they now stand,
    welcome bonus and card included."""
    member = register(
        session, enrolment, phone_region=keys.phone_region, actor=actor, now=now, store_id=store_id
    )
    open_account(session, member.id, now)
    _welcome(session, member.id, store_code=store_code, actor=actor, now=now)
    if enrolment.card_code:
        card = activate_card(
            session, keys=keys, code=enrolment.card_code, member_id=member.id, actor=actor, now=now
        )
    else:
        card = issue_card(session, member_id=member.id, now=now)
    _referral(session, member, enrolment, keys=keys, card_number=card.number, now=now)
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
    session.flush()
    return profile_of(session, member, card_key=keys.card_key, now=now)


def _referral(
    session: Session,
    member: Member,
    enrolment: Enrolment,
    *,
    keys: LookupKeys,
    card_number: str,
    now: datetime,
) -> None:
    """Remember the new member's contacts (keyed digests, for the referral fraud checks), and
    record the referral when they came with a friend's code. A refused referral does not stop
    the enrolment: it is kept with its reason (GET /members/{id}/referral)."""
    key = keys.contacts
    if enrolment.referral_code:
        record_referral(
            session,
            referee_id=member.id,
            code=enrolment.referral_code,
            now=now,
            fingerprints=Fingerprints(
                email=member.email, phone=member.phone, card_number=card_number
            ),
            contact_key=key,
        )
    remember_contacts(
        session, member_id=member.id, email=member.email, phone=member.phone, key=key, now=now
    )


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


def enrol_once(
    session: Session,
    idempotency: Idempotency | None,
    enrolment: Enrolment,
    *,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    store_id: int | None = None,
    store_code: str | None = None,
) -> Outcome[MemberProfile]:
    """`enrol`, at most once per idempotency key: a retried enrolment answers the first
    result, as it was then."""
    return once(
        session,
        idempotency,
        operation="member.enrol",
        request=enrolment,
        result_type=MemberProfile,
        run=lambda: enrol(
            session,
            enrolment,
            keys=keys,
            actor=actor,
            now=now,
            store_id=store_id,
            store_code=store_code,
        ),
        now=now,
        member_of=lambda profile: profile.id,
    )


def hand_out_card_once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    member_id: int,
    card_code: str,
    keys: LookupKeys,
    actor: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Outcome[CardView]:
    """Hand a pre-printed card to a member who has one already (say, enrolled online): both
    work. The card as handed out. A till hands cards only to members it may see."""

    def run() -> CardView:
        member = visible_member(session, member_id, viewer)
        card = activate_card(
            session, keys=keys, code=card_code, member_id=member.id, actor=actor, now=now
        )
        return card_view(card, keys.card_key)

    return once(
        session,
        idempotency,
        operation="card.hand_out",
        request={"member_id": member_id, "card_code": card_code},
        result_type=CardView,
        run=run,
        now=now,
        member_of=lambda _view: member_id,
    )
