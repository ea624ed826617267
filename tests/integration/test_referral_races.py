"""Referrals under races, on PostgreSQL with real connections released together: the monthly cap
is never passed, a friend has one referral, a member one code, and a friend's purchases at two
tills at once reward the referral once."""

from __future__ import annotations

from collections import Counter

from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.cards.models import Card
from loyalty.clock import FixedClock
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.ledger.services import check_ledger
from loyalty.members.models import Member
from loyalty.referrals.models import MemberReferralCode, Referral, ReferralStatus
from loyalty.referrals.services import (
    Fingerprints,
    ReferralOutcome,
    RewardGiven,
    on_sale,
    record_referral,
    referral_code_of,
    update_settings,
)
from loyalty.rules.pricing import BasketLine
from loyalty.sales.services import find_sale
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import make_member, make_till, qr_of, sale_body, sell
from tests.races import Post, committed_till_and_member, race, race_calls

THREADS = 8
KEY = "race-contact-key"


def _members(engine: Engine, keys: LookupKeys, count: int) -> list[int]:
    clock = FixedClock(START)
    with Session(engine) as session, session.begin():
        return [make_member(session, keys, clock)[0].id for _ in range(count)]


def _code(engine: Engine, member_id: int) -> str:
    with Session(engine) as session, session.begin():
        return referral_code_of(session, member_id, START).code


def _cap(engine: Engine, cap: int | None) -> None:
    with Session(engine) as session, session.begin():
        update_settings(session, {"monthly_cap": cap}, actor="test", now=START)


def _refer(engine: Engine, friend_id: int, code: str) -> ReferralOutcome:
    with Session(engine) as session, session.begin():
        return record_referral(
            session,
            referee_id=friend_id,
            code=code,
            now=START,
            fingerprints=Fingerprints(),
            contact_key=KEY,
        )


def _outcomes(results: list[ReferralOutcome | BaseException]) -> Counter[str | None]:
    assert all(isinstance(r, ReferralOutcome) for r in results), results
    return Counter(r.reason for r in results if isinstance(r, ReferralOutcome))


def test_friends_enrolling_at_once_with_one_code_never_pass_the_monthly_cap(
    race_engine: Engine, keys: LookupKeys
):
    _cap(race_engine, 3)
    referrer, *friends = _members(race_engine, keys, THREADS + 1)
    code = _code(race_engine, referrer)

    results = race_calls([lambda f=f: _refer(race_engine, f, code) for f in friends])

    assert _outcomes(results) == {None: 3, "cap_reached": THREADS - 3}
    with Session(race_engine) as session:
        accepted = session.scalar(
            select(func.count()).where(
                Referral.referrer_id == referrer, Referral.status == ReferralStatus.PENDING
            )
        )
    assert accepted == 3


def test_a_friend_recorded_with_several_codes_at_once_has_one_referral(
    race_engine: Engine, keys: LookupKeys
):
    _cap(race_engine, None)
    friend, *referrers = _members(race_engine, keys, THREADS + 1)
    codes = [_code(race_engine, referrer) for referrer in referrers]

    results = race_calls([lambda c=c: _refer(race_engine, friend, c) for c in codes])

    assert _outcomes(results) == {None: 1, "already_referred": THREADS - 1}
    winner = next(r for r in results if isinstance(r, ReferralOutcome) and r.accepted)
    with Session(race_engine) as session:
        rows = session.scalars(select(Referral).where(Referral.referee_id == friend)).all()
    assert [(r.referrer_id, r.status) for r in rows] == [(winner.referrer_id, "pending")]


def test_first_asks_for_a_members_code_at_once_give_one_code(race_engine: Engine, keys: LookupKeys):
    (member,) = _members(race_engine, keys, 1)

    results = race_calls([lambda: _code(race_engine, member)] * THREADS)

    assert len(set(results)) == 1, results
    with Session(race_engine) as session:
        rows = session.scalar(select(func.count()).where(MemberReferralCode.member_id == member))
    assert rows == 1


def test_a_friends_purchases_at_two_tills_at_once_reward_the_referral_once(
    race_engine: Engine, keys: LookupKeys
):
    _cap(race_engine, None)
    referrer, friend = _members(race_engine, keys, 2)
    assert _refer(race_engine, friend, _code(race_engine, referrer)).accepted
    clock = FixedClock(START)
    sales = []
    with Session(race_engine, expire_on_commit=False) as session, session.begin():
        buyer = session.get_one(Member, friend)
        for n in range(THREADS):
            till = make_till(session, clock)
            external_id = f"race-referral-{friend}-{n}"
            lines = [BasketLine("GOODS", 1, 2000)]
            # recorded without a buyer, then given one: checkout's own referral step stays out
            sell(session, till, keys, clock, lines=lines, external_id=external_id)
            sale = find_sale(session, till.store.id, external_id)
            sale.member_id = buyer.id
            sales.append(sale)
    given: list[tuple[int, int, int | None]] = []

    def qualify(sale_id: int, kept_total: int) -> RewardGiven | None:
        with Session(race_engine) as session, session.begin():
            return on_sale(
                session,
                member_id=friend,
                sale_id=sale_id,
                kept_total=kept_total,
                occurred_at=START,
                payment_fingerprint=None,
                now=START,
                reward=lambda member, points, offer, _reason: given.append((member, points, offer)),
            )

    results = race_calls([lambda s=s: qualify(s.id, s.kept_total) for s in sales])

    assert sum(isinstance(r, RewardGiven) for r in results) == 1, results
    assert sum(r is None for r in results) == THREADS - 1, results
    assert sorted(given) == sorted([(referrer, 500, None), (friend, 250, None)])


def test_a_friend_buying_at_eight_tills_at_once_rewards_the_referral_once_through_the_api(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    _cap(race_engine, None)
    referrer, friend = _members(race_engine, keys, 2)
    assert _refer(race_engine, friend, _code(race_engine, referrer)).accepted
    with Session(race_engine) as session:
        card = session.scalars(select(Card).where(Card.member_id == friend)).one()
    qr = qr_of(card, keys)
    posts = []
    for n in range(THREADS):
        till, _member, _qr = committed_till_and_member(race_engine, keys)
        body = sale_body(f"REF-RACE-{friend}-{n}", qr, START)
        posts.append(Post("/api/v1/pos/transactions", body, till.headers))

    responses = race(live_app, posts)

    assert sorted(r.status_code for r in responses) == [201] * THREADS
    with Session(race_engine) as session:
        entries = session.scalars(
            select(PointEntry.member_id)
            .where(PointEntry.kind == EntryKind.REFERRAL)
            .where(PointEntry.member_id.in_([referrer, friend]))
        ).all()
        assert sorted(entries) == sorted([referrer, friend])
        assert check_ledger(session) == []
