"""Friend brings friend, on SQLite and PostgreSQL: codes and links, a referral from enrolment to
reward, every fraud guard on its own, reversal by a full return within the window (and none
after it), the funnel, the terms and their command line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card
from loyalty.checkout.returns import void_sale
from loyalty.clock import FixedClock
from loyalty.coupons.offers import create_offer
from loyalty.db import make_engine, session_scope
from loyalty.errors import InvalidInput
from loyalty.ledger.adjustments import adjust_points
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.ledger.services import balance, credit
from loyalty.members.models import Member
from loyalty.members.services import MemberChanges, erase, update_member
from loyalty.program import ensure_program, get_program
from loyalty.referrals.commands import referrals_group
from loyalty.referrals.models import ReferralContact, ReferralStatus, RefusalReason
from loyalty.referrals.services import (
    Fingerprints,
    Funnel,
    ReferralOutcome,
    RewardGiven,
    RewardHook,
    link_opened,
    list_referrals,
    member_funnel,
    on_full_return,
    on_sale,
    program_funnel,
    record_referral,
    referral_code_of,
    referral_of,
    referral_settings,
    remember_contacts,
    remember_existing_contacts,
    update_settings,
)
from loyalty.rules.pricing import BasketLine
from loyalty.sales.services import find_sale
from loyalty.settings import LookupKeys
from tests.conftest import CARD_KEY, START, drop_postgres_database, fresh_postgres_database
from tests.factories import Till, make_member, make_till, sell

KEY = "test-contact-key"


@dataclass
class Hook:
    """A reward or take-back hook that remembers what it was asked to give."""

    calls: list[tuple[int, int, int | None]] = field(default_factory=list)

    def __call__(self, member_id: int, points: int, offer_id: int | None, reason: str) -> None:
        assert reason.startswith("referral ")
        self.calls.append((member_id, points, offer_id))


@pytest.fixture
def till(session: Session, clock: FixedClock) -> Till:
    return make_till(session, clock)


def enrol(session: Session, keys: LookupKeys, clock: FixedClock, **fields: object) -> Member:
    """A member enrolled as enrolment will do it: their contacts remembered."""
    member, _card = make_member(session, keys, clock, **fields)
    remember_contacts(
        session,
        member_id=member.id,
        email=member.email,
        phone=member.phone,
        key=KEY,
        now=clock.now(),
    )
    return member


def code_of(session: Session, member: Member, clock: FixedClock) -> str:
    return referral_code_of(session, member.id, clock.now()).code


def refer(
    session: Session, friend: Member, code: str, clock: FixedClock, **seen: str
) -> ReferralOutcome:
    fingerprints = Fingerprints(email=friend.email, phone=friend.phone, **seen)
    return record_referral(
        session,
        referee_id=friend.id,
        code=code,
        now=clock.now(),
        fingerprints=fingerprints,
        contact_key=KEY,
    )


def referred_friend(
    session: Session, keys: LookupKeys, clock: FixedClock, referrer: Member | None = None
) -> tuple[Member, Member]:
    """A referrer and a friend whose referral is pending."""
    referrer = referrer or enrol(session, keys, clock)
    friend = enrol(session, keys, clock)
    assert refer(session, friend, code_of(session, referrer, clock), clock).accepted
    return referrer, friend


def buy(
    session: Session,
    till: Till,
    keys: LookupKeys,
    clock: FixedClock,
    member: Member,
    amount: int,
    *,
    reward: RewardHook,
    payment: str | None = None,
) -> tuple[int, str, RewardGiven | None]:
    """A sale of `amount` to the member, told to referrals as checkout does, but with these
    tests' hook: (sale id, its external id, what on_sale answered). The sale is recorded
    without a buyer (so checkout's own referral step stays out of it) and then given one."""
    external_id = f"sale-{uuid.uuid4().hex[:8]}"
    sell(
        session,
        till,
        keys,
        clock,
        lines=[BasketLine("GOODS", 1, amount)],
        external_id=external_id,
    )
    sale = find_sale(session, till.store.id, external_id)
    sale.member_id = member.id
    session.flush()
    given = on_sale(
        session,
        member_id=member.id,
        sale_id=sale.id,
        kept_total=sale.kept_total,
        occurred_at=sale.occurred_at,
        payment_fingerprint=payment,
        now=clock.now(),
        reward=reward,
    )
    return sale.id, external_id, given


def status_of(session: Session, friend: Member) -> tuple[str, str | None]:
    found = referral_of(session, friend.id)
    assert found is not None
    return found.status, found.reason


# Codes and links


def test_a_member_gets_one_code_on_first_ask_with_a_link_to_join(session, keys, clock):
    member = enrol(session, keys, clock)
    first = referral_code_of(session, member.id, clock.now())
    again = referral_code_of(session, member.id, clock.now() + timedelta(days=3))
    assert first == again
    assert first.link_path == f"/join/{first.code}"
    assert len(first.code) == 8


def test_every_member_has_a_code_of_their_own(session, keys, clock):
    codes = {code_of(session, enrol(session, keys, clock), clock) for _ in range(20)}
    assert len(codes) == 20


def test_opening_the_link_counts_as_invited_in_the_members_funnel(session, keys, clock):
    member = enrol(session, keys, clock)
    code = code_of(session, member, clock)
    assert link_opened(session, code, clock.now())
    assert link_opened(session, f"{code[:4].lower()}-{code[4:].lower()}", clock.now())
    assert link_opened(session, code, clock.now() + timedelta(days=2))
    assert not link_opened(session, "ZZZZZZZZ", clock.now())
    assert not link_opened(session, "'; DROP TABLE referrals; --", clock.now())
    assert member_funnel(session, member.id).invited == 3


# From enrolment to reward


def test_a_friend_is_pending_until_a_purchase_of_the_minimum_then_both_are_rewarded(
    session, keys, clock, till
):
    referrer, friend = referred_friend(session, keys, clock)
    reward = Hook()
    assert status_of(session, friend) == (ReferralStatus.PENDING, None)

    *_, small = buy(session, till, keys, clock, friend, 999, reward=reward)
    assert small is None
    assert reward.calls == []
    assert status_of(session, friend) == (ReferralStatus.PENDING, None)

    clock.advance(timedelta(days=5))
    sale_id, _, given = buy(session, till, keys, clock, friend, 1000, reward=reward)
    assert given is not None
    assert (given.referrer_points, given.referee_points) == (500, 250)
    assert sorted(reward.calls) == sorted([(referrer.id, 500, None), (friend.id, 250, None)])
    stored = referral_of(session, friend.id)
    assert stored is not None
    assert stored.status == ReferralStatus.REWARDED
    assert stored.qualified_sale_id == sale_id
    assert stored.rewarded_at == clock.now()
    assert (stored.referrer_points, stored.referee_points) == (500, 250)

    *_, later = buy(session, till, keys, clock, friend, 5000, reward=reward)
    assert later is None, "only the first qualifying purchase rewards"
    assert len(reward.calls) == 2
    funnel = member_funnel(session, referrer.id)
    assert (funnel.enrolled, funnel.pending, funnel.qualified, funnel.rewarded) == (1, 0, 1, 1)


def test_a_purchase_after_the_qualifying_window_rewards_nobody(session, keys, clock, till):
    _referrer, friend = referred_friend(session, keys, clock)
    reward = Hook()
    clock.advance(timedelta(days=30, seconds=1))
    *_, given = buy(session, till, keys, clock, friend, 5000, reward=reward)
    assert given is None
    assert reward.calls == []
    assert status_of(session, friend) == (ReferralStatus.PENDING, None)


def test_a_purchase_made_offline_within_the_window_still_qualifies(session, keys, clock, till):
    _referrer, friend = referred_friend(session, keys, clock)
    enrolled = clock.now()
    clock.advance(timedelta(days=35))  # the till comes back online with a sale of day 29
    external_id = "offline-1"
    sell(
        session,
        till,
        keys,
        clock,
        lines=[BasketLine("GOODS", 1, 2000)],
        external_id=external_id,
        occurred_at=enrolled + timedelta(days=29),
    )
    sale = find_sale(session, till.store.id, external_id)
    sale.member_id = friend.id  # as `buy` does: checkout's own referral step stays out of it
    given = on_sale(
        session,
        member_id=friend.id,
        sale_id=sale.id,
        kept_total=sale.kept_total,
        occurred_at=sale.occurred_at,
        payment_fingerprint=None,
        now=clock.now(),
        reward=Hook(),
    )
    assert given is not None


def test_points_the_caller_posts_reach_both_balances_as_referral_entries(
    session, keys, clock, till
):
    referrer, friend = referred_friend(session, keys, clock)
    before = balance(session, referrer.id).available

    def post(member_id: int, points: int, offer_id: int | None, reason: str) -> None:
        assert offer_id is None
        credit(
            session,
            program=get_program(session),
            member_id=member_id,
            points=points,
            kind=EntryKind.REFERRAL,
            reason=reason,
            actor="system",
            now=clock.now(),
        )

    buy(session, till, keys, clock, friend, 1500, reward=post)
    session.flush()
    assert balance(session, referrer.id).available == before + 500
    kinds = session.scalars(
        select(PointEntry.kind).where(PointEntry.member_id == friend.id).order_by(PointEntry.id)
    ).all()
    assert EntryKind.REFERRAL in kinds


def test_each_side_gets_a_coupon_of_an_offer_instead_of_points_when_one_is_set(
    session, keys, clock, till
):
    offer = create_offer(
        session, {"name": "Welcome", "kind": "amount_off", "value": 500}, actor="t", now=START
    )
    update_settings(session, {"referee_offer_id": offer.id}, actor="staff:1:t", now=START)
    referrer, friend = referred_friend(session, keys, clock)
    reward = Hook()
    *_, given = buy(session, till, keys, clock, friend, 1200, reward=reward)
    assert given is not None
    assert sorted(reward.calls) == sorted([(referrer.id, 500, None), (friend.id, 0, offer.id)])
    assert (given.referee_points, given.referee_offer_id) == (0, offer.id)


def test_a_referrer_blocked_meanwhile_gets_nothing_and_the_friend_still_does(
    session, keys, clock, till
):
    from loyalty.members.services import set_blocked  # noqa: PLC0415

    referrer, friend = referred_friend(session, keys, clock)
    set_blocked(session, member_id=referrer.id, blocked=True, reason="fraud", actor="t", now=START)
    reward = Hook()
    *_, given = buy(session, till, keys, clock, friend, 1200, reward=reward)
    assert given is not None
    assert reward.calls == [(friend.id, 250, None)]


# Refusals: the member enrols either way


def test_an_unknown_code_is_refused_and_the_friend_stays_a_member(session, keys, clock):
    friend = enrol(session, keys, clock)
    outcome = refer(session, friend, "ZZZZ-ZZZZ", clock)
    assert not outcome.accepted
    assert outcome.reason == RefusalReason.UNKNOWN_CODE
    assert outcome.referrer_id is None
    assert session.get_one(Member, friend.id).status == "active"
    assert status_of(session, friend) == (ReferralStatus.REFUSED, RefusalReason.UNKNOWN_CODE)


def test_a_code_typed_in_lower_case_with_look_alikes_finds_its_referrer(session, keys, clock):
    referrer = enrol(session, keys, clock)
    code = code_of(session, referrer, clock)
    typed = code.lower().replace("0", "o").replace("1", "l")
    outcome = refer(session, enrol(session, keys, clock), f" {typed[:4]} {typed[4:]} ", clock)
    assert outcome.accepted
    assert outcome.referrer_id == referrer.id


def test_referring_yourself_with_your_own_code_is_same_as_advocate(session, keys, clock):
    member = enrol(session, keys, clock)
    outcome = refer(session, member, code_of(session, member, clock), clock)
    assert outcome.reason == RefusalReason.SAME_AS_ADVOCATE


def test_a_friend_with_the_referrers_email_spelt_otherwise_is_same_as_advocate(
    session, keys, clock
):
    referrer = enrol(session, keys, clock, email="mary.seacole@gmail.com")
    friend = enrol(session, keys, clock, email="Mary.Seacole+2nd@gmail.com")
    outcome = refer(session, friend, code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.SAME_AS_ADVOCATE
    assert outcome.referrer_id == referrer.id


def test_a_friend_with_the_phone_the_referrer_gave_up_is_same_as_advocate(session, keys, clock):
    referrer = enrol(session, keys, clock, phone="+44 20 7946 0011")
    update_member(
        session,
        referrer.id,
        MemberChanges(phone="+44 20 7946 0022"),
        phone_region="GB",
        actor="t",
        now=clock.now(),
    )
    friend = enrol(session, keys, clock, phone="020 7946 0011")
    outcome = refer(session, friend, code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.SAME_AS_ADVOCATE


def test_a_friend_showing_the_referrers_card_is_same_as_advocate(session, keys, clock):
    referrer = enrol(session, keys, clock)
    card = session.scalars(select(Card).where(Card.member_id == referrer.id)).one()
    friend = enrol(session, keys, clock)
    spaced = " ".join(card.number[i : i + 4] for i in range(0, 16, 4))
    outcome = refer(session, friend, code_of(session, referrer, clock), clock, card_number=spaced)
    assert outcome.reason == RefusalReason.SAME_AS_ADVOCATE


def test_a_friend_enrolling_with_the_referrers_payment_card_is_same_as_advocate(
    session, keys, clock, till
):
    referrer = enrol(session, keys, clock)
    buy(session, till, keys, clock, referrer, 800, reward=Hook(), payment="tok_4242")
    friend = enrol(session, keys, clock)
    outcome = refer(
        session, friend, code_of(session, referrer, clock), clock, payment_fingerprint="tok_4242"
    )
    assert outcome.reason == RefusalReason.SAME_AS_ADVOCATE


def test_a_friend_paying_with_the_referrers_card_at_the_purchase_rewards_nobody(
    session, keys, clock, till
):
    referrer = enrol(session, keys, clock)
    buy(session, till, keys, clock, referrer, 800, reward=Hook(), payment="tok_4242")
    _, friend = referred_friend(session, keys, clock, referrer)
    reward = Hook()
    sale_id, _, given = buy(
        session, till, keys, clock, friend, 5000, reward=reward, payment="tok_4242"
    )
    assert given is None
    assert reward.calls == []
    assert status_of(session, friend) == (ReferralStatus.REFUSED, RefusalReason.SAME_AS_ADVOCATE)
    stored = referral_of(session, friend.id)
    assert stored is not None
    assert stored.qualified_sale_id == sale_id
    funnel = member_funnel(session, referrer.id)
    assert (funnel.qualified, funnel.rewarded) == (1, 0)
    assert funnel.refused == {"same_as_advocate": 1}


def test_a_friend_paying_with_their_own_card_is_rewarded(session, keys, clock, till):
    referrer = enrol(session, keys, clock)
    buy(session, till, keys, clock, referrer, 800, reward=Hook(), payment="tok_4242")
    _, friend = referred_friend(session, keys, clock, referrer)
    *_, given = buy(session, till, keys, clock, friend, 5000, reward=Hook(), payment="tok_1111")
    assert given is not None


def test_a_former_member_who_was_erased_is_already_a_member(session, keys, clock):
    referrer = enrol(session, keys, clock)
    former = enrol(session, keys, clock, email="back.again@example.com")
    erase(session, member_id=former.id, reason="asked", actor="t", now=clock.now())
    clock.advance(timedelta(days=60))
    returning = enrol(session, keys, clock, email="Back.Again@example.com")
    outcome = refer(session, returning, code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.ALREADY_MEMBER
    assert session.get_one(Member, returning.id).status == "active"


def test_a_former_members_phone_is_already_a_member_too(session, keys, clock):
    referrer = enrol(session, keys, clock)
    former = enrol(session, keys, clock, phone="+44 20 7946 0033")
    erase(session, member_id=former.id, reason="asked", actor="t", now=clock.now())
    returning = enrol(session, keys, clock, phone="+442079460033")
    outcome = refer(session, returning, code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.ALREADY_MEMBER


def test_members_enrolled_before_referrals_are_remembered_by_the_backfill(session, keys, clock):
    referrer = enrol(session, keys, clock)
    old, _card = make_member(session, keys, clock, email="long.ago@example.com")
    assert remember_existing_contacts(session, KEY, clock.now(), batch=2) >= 2
    erase(session, member_id=old.id, reason="asked", actor="t", now=clock.now())
    returning = enrol(session, keys, clock, email="long.ago@example.com")
    outcome = refer(session, returning, code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.ALREADY_MEMBER


def test_a_friend_who_referred_their_referrer_is_circular(session, keys, clock):
    first, second = referred_friend(session, keys, clock)
    # `first` joined without a code; now staff record them as referred by `second`
    outcome = refer(session, first, code_of(session, second, clock), clock)
    assert outcome.reason == RefusalReason.CIRCULAR


def test_a_friend_up_the_chain_of_referrers_is_circular(session, keys, clock):
    first, second = referred_friend(session, keys, clock)
    _, third = referred_friend(session, keys, clock, second)
    _, fourth = referred_friend(session, keys, clock, third)
    outcome = refer(session, first, code_of(session, fourth, clock), clock)
    assert outcome.reason == RefusalReason.CIRCULAR


def test_a_referrer_reaches_the_monthly_cap_and_may_refer_again_next_month(session, keys, clock):
    update_settings(session, {"monthly_cap": 2}, actor="t", now=START)
    referrer = enrol(session, keys, clock)
    code = code_of(session, referrer, clock)
    unknown = refer(session, enrol(session, keys, clock), "ZZZZZZZZ", clock)
    assert unknown.reason == RefusalReason.UNKNOWN_CODE
    outcomes = [refer(session, enrol(session, keys, clock), code, clock) for _ in range(3)]
    assert [o.reason for o in outcomes] == [None, None, RefusalReason.CAP_REACHED]
    clock.advance(timedelta(days=18))  # 1 April
    assert clock.now().month == 4
    assert refer(session, enrol(session, keys, clock), code, clock).accepted


def test_refused_referrals_do_not_count_towards_the_cap(session, keys, clock):
    update_settings(session, {"monthly_cap": 1}, actor="t", now=START)
    referrer = enrol(session, keys, clock, email="cap.owner@example.com")
    code = code_of(session, referrer, clock)
    twin = enrol(session, keys, clock, email="cap.owner+twin@example.com")
    assert refer(session, twin, code, clock).reason == RefusalReason.SAME_AS_ADVOCATE
    assert refer(session, enrol(session, keys, clock), code, clock).accepted


def test_a_friend_already_referred_keeps_their_first_referral(session, keys, clock):
    first_referrer, friend = referred_friend(session, keys, clock)
    other = enrol(session, keys, clock)
    outcome = refer(session, friend, code_of(session, other, clock), clock)
    assert outcome.reason == RefusalReason.ALREADY_REFERRED
    stored = referral_of(session, friend.id)
    assert stored is not None
    assert (stored.referrer_id, stored.status) == (first_referrer.id, ReferralStatus.PENDING)
    assert member_funnel(session, other.id).enrolled == 0


def test_while_referrals_are_disabled_friends_are_refused(session, keys, clock):
    update_settings(session, {"enabled": False}, actor="t", now=START)
    referrer = enrol(session, keys, clock)
    outcome = refer(session, enrol(session, keys, clock), code_of(session, referrer, clock), clock)
    assert outcome.reason == RefusalReason.DISABLED
    assert outcome.referrer_id == referrer.id


# Reversal


def test_a_full_return_within_the_window_takes_both_rewards_back(session, keys, clock, till):
    referrer, friend = referred_friend(session, keys, clock)
    sale_id, _external_id, given = buy(session, till, keys, clock, friend, 1200, reward=Hook())
    assert given is not None
    clock.advance(timedelta(days=30))
    # checkout calls this at the full return (tests/api/test_referrals_at_the_till.py)
    take_back = Hook()
    assert on_full_return(session, sale_id=sale_id, now=clock.now(), take_back=take_back)
    assert sorted(take_back.calls) == sorted([(referrer.id, 500, None), (friend.id, 250, None)])
    assert status_of(session, friend) == (ReferralStatus.REVERSED, None)
    assert not on_full_return(session, sale_id=sale_id, now=clock.now(), take_back=take_back)
    assert len(take_back.calls) == 2
    funnel = member_funnel(session, referrer.id)
    assert (funnel.rewarded, funnel.reversed) == (1, 1)


def test_a_void_after_the_window_takes_nothing_back(session, keys, clock, till):
    _referrer, friend = referred_friend(session, keys, clock)
    sale_id, external_id, _ = buy(session, till, keys, clock, friend, 1200, reward=Hook())
    clock.advance(timedelta(days=30, seconds=1))
    void_sale(session, terminal=till.terminal, sale_external_id=external_id, now=clock.now())
    take_back = Hook()
    assert not on_full_return(session, sale_id=sale_id, now=clock.now(), take_back=take_back)
    assert take_back.calls == []
    assert status_of(session, friend) == (ReferralStatus.REWARDED, None)


def test_a_reversed_friend_is_not_rewarded_again_by_a_new_purchase(session, keys, clock, till):
    _referrer, friend = referred_friend(session, keys, clock)
    sale_id, _, _ = buy(session, till, keys, clock, friend, 1200, reward=Hook())
    assert on_full_return(session, sale_id=sale_id, now=clock.now(), take_back=Hook())
    reward = Hook()
    *_, again = buy(session, till, keys, clock, friend, 1200, reward=reward)
    assert again is None
    assert reward.calls == []


def test_points_taken_back_leave_the_ledger_consistent(session, keys, clock, till):
    referrer, friend = referred_friend(session, keys, clock)
    program = get_program(session)

    def post(member_id: int, points: int, _offer: int | None, reason: str) -> None:
        credit(
            session,
            program=program,
            member_id=member_id,
            points=points,
            kind=EntryKind.REFERRAL,
            reason=reason,
            actor="system",
            now=clock.now(),
        )

    def remove(member_id: int, points: int, _offer: int | None, reason: str) -> None:
        adjust_points(
            session, member_id=member_id, points=-points, reason=reason, actor="t", now=clock.now()
        )

    before = balance(session, referrer.id).available
    sale_id, *_ = buy(session, till, keys, clock, friend, 1200, reward=post)
    assert on_full_return(session, sale_id=sale_id, now=clock.now(), take_back=remove)
    session.flush()
    assert balance(session, referrer.id).available == before


# The funnel and the list


def test_the_programmes_funnel_counts_the_days_asked_for(session, keys, clock, till):
    referrer = enrol(session, keys, clock)
    code = code_of(session, referrer, clock)
    link_opened(session, code, clock.now())
    link_opened(session, code, clock.now())
    _, friend = referred_friend(session, keys, clock, referrer)
    buy(session, till, keys, clock, friend, 1500, reward=Hook())
    refer(session, enrol(session, keys, clock), "ZZZZZZZZ", clock)
    clock.advance(timedelta(days=1))
    link_opened(session, code, clock.now())
    referred_friend(session, keys, clock, referrer)

    day = START.date()
    first_day = program_funnel(session, day, day)
    assert first_day.funnel == Funnel(
        invited=2,
        enrolled=2,
        pending=0,
        qualified=1,
        rewarded=1,
        reversed=0,
        refused={"unknown_code": 1},
    )
    both = program_funnel(session, day, day + timedelta(days=1)).funnel
    assert (both.invited, both.enrolled, both.pending) == (3, 3, 1)
    assert program_funnel(session, day - timedelta(days=9), day - timedelta(days=1)).funnel == (
        Funnel()
    )
    with pytest.raises(InvalidInput):
        program_funnel(session, day, day - timedelta(days=1))


def test_staff_list_referrals_newest_first_by_status_in_pages(session, keys, clock):
    referrer = enrol(session, keys, clock)
    for _ in range(3):
        referred_friend(session, keys, clock, referrer)
    refer(session, enrol(session, keys, clock), "ZZZZZZZZ", clock)
    first = list_referrals(session, status=ReferralStatus.PENDING, before_id=None, limit=2)
    assert len(first.referrals) == 2
    assert first.next_cursor is not None
    rest = list_referrals(
        session, status=ReferralStatus.PENDING, before_id=first.next_cursor, limit=200
    )
    ids = [r.id for r in first.referrals + rest.referrals]
    assert ids == sorted(ids, reverse=True)
    assert {r.status for r in first.referrals + rest.referrals} == {ReferralStatus.PENDING}
    with pytest.raises(InvalidInput):
        list_referrals(session, status="won", before_id=None, limit=10)


# The terms


def test_staff_change_the_terms_and_the_audit_log_says_what_changed(session, clock):
    assert referral_settings(session).referrer_points == 500
    changed = update_settings(
        session, {"referrer_points": 800, "monthly_cap": None}, actor="staff:1:ann", now=START
    )
    assert (changed.referrer_points, changed.monthly_cap) == (800, None)
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "referral_settings.update")
    ).one()
    assert entry.actor == "staff:1:ann"
    assert entry.details == {
        "before": {"referrer_points": 500, "monthly_cap": 10},
        "after": {"referrer_points": 800, "monthly_cap": None},
    }


def test_invalid_terms_and_unknown_offers_are_refused_by_field_and_nothing_changes(session):
    with pytest.raises(InvalidInput) as caught:
        update_settings(
            session, {"referee_points": -5, "qualify_within_days": 0}, actor="t", now=START
        )
    assert set(caught.value.errors) == {"referee_points", "qualify_within_days"}
    with pytest.raises(InvalidInput) as caught:
        update_settings(session, {"referrer_offer_id": 987_654}, actor="t", now=START)
    assert list(caught.value.errors) == ["referrer_offer_id"]
    with pytest.raises(InvalidInput):
        update_settings(session, {}, actor="t", now=START)
    assert referral_settings(session) == referral_settings(session).__class__()
    assert (
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == "referral_settings.update")
        ).all()
        == []
    )


def test_a_change_of_the_window_keeps_the_window_friends_enrolled_with(session, keys, clock, till):
    _referrer, friend = referred_friend(session, keys, clock)
    update_settings(session, {"qualify_within_days": 5}, actor="t", now=START)
    clock.advance(timedelta(days=20))
    *_, given = buy(session, till, keys, clock, friend, 1500, reward=Hook())
    assert given is not None


# The command line (a database of the module's own: the commands commit)


@pytest.fixture(scope="module")
def cli_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('referrals_cli') / 'loyalty.sqlite3'}"
    else:
        url = fresh_postgres_database(f"referrals_cli_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        ensure_program(session, START)
    engine.dispose()
    yield url
    if backend == "postgresql":
        drop_postgres_database(url)


def _cli(url: str, *args: str) -> object:
    runner = CliRunner(
        env={
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_SECRET_KEY": "test-secret",
            "LOYALTY_CARD_KEY": CARD_KEY,
            "LOYALTY_REDIS_URL": "",
        }
    )
    return runner.invoke(referrals_group, list(args), catch_exceptions=False)


def test_the_terms_change_from_the_command_line_audited_and_refused_by_field(cli_url):
    done = _cli(cli_url, "set", "--referee-points", "300", "--monthly-cap", "none", "--disabled")
    assert done.exit_code == 0, done.output
    assert "referee_points" in done.stdout
    shown = _cli(cli_url, "settings")
    lines = {line.split()[0]: line.split()[-1] for line in shown.stdout.splitlines()[2:]}
    assert (lines["referee_points"], lines["monthly_cap"], lines["enabled"]) == (
        "300",
        "-",
        "False",
    )
    refused = _cli(cli_url, "set", "--referrer-points", "-1", "--referrer-offer", "424242")
    assert refused.exit_code == 1
    assert "referrer_points" in refused.stderr
    assert "referrer_offer_id: no offer has id 424242" in refused.stderr
    typo = _cli(cli_url, "set", "--monthly-cap", "ten")
    assert typo.exit_code == 2
    assert "--monthly-cap" in typo.stderr
    engine = make_engine(cli_url)
    with Session(engine) as session:
        actors = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "referral_settings.update")
        ).all()
    engine.dispose()
    assert len(actors) == 1
    assert actors[0].startswith("cli:")


def test_the_backfill_list_and_funnel_commands_answer_from_the_command_line(cli_url, keys):
    engine = make_engine(cli_url)
    clock = FixedClock(START)
    with session_scope(engine) as session:
        make_member(session, keys, clock)
    engine.dispose()
    remembered = _cli(cli_url, "remember-contacts")
    assert remembered.exit_code == 0, remembered.output
    assert "contacts of" in remembered.stdout
    assert _cli(cli_url, "list").exit_code == 0
    day = START.date().isoformat()
    funnel = _cli(cli_url, "funnel", "--since", day, "--until", day)
    assert funnel.exit_code == 0, funnel.output
    assert "invited" in funnel.stdout
    assert f"{day} to {day} (UTC)" in funnel.stdout


def test_nothing_is_kept_of_a_refused_referrals_contacts_but_digests(session, keys, clock):
    """What the fraud guards keep is not personal data anyone can read back."""
    member = enrol(session, keys, clock, email="private.person@example.com")
    kept = session.scalars(
        select(ReferralContact.digest).where(ReferralContact.member_id == member.id)
    ).all()
    assert kept
    assert all("private" not in digest and len(digest) == 64 for digest in kept)
