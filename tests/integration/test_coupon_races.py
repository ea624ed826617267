"""Coupons, budgets and reward stock under races, on PostgreSQL with real connections released
together: exactly the allowed number of winners, never an overspent budget."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.coupons.models import CouponRedemption, Offer, Reward, RewardClaim
from loyalty.coupons.offers import create_offer, get_offer
from loyalty.coupons.rewards import create_reward
from loyalty.coupons.services import create_shared_coupon
from loyalty.ledger.services import check_ledger
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import sale_body
from tests.races import Post, committed_till_and_member, race

THREADS = 8


def _offer(engine: Engine, code: str, **fields: Any) -> int:
    with Session(engine) as session, session.begin():
        offer = create_offer(
            session,
            {"name": code, "kind": "amount_off", "value": 100} | fields,
            actor="test",
            now=START,
        )
        create_shared_coupon(session, offer.id, code, actor="test", now=START)
    return offer.id


def _sales(engine: Engine, keys: LookupKeys, code: str) -> list[Post]:
    posts = []
    for n in range(THREADS):
        till, _member, qr = committed_till_and_member(engine, keys)
        body = sale_body(f"RACE-{code}-{n}", qr, START, coupon_codes=[code])
        posts.append(Post("/api/v1/pos/transactions", body, till.headers))
    return posts


def _ledger_clean(engine: Engine) -> None:
    with Session(engine) as session:
        assert check_ledger(session) == []


def test_eight_tills_redeeming_one_single_use_coupon_one_wins(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    offer_id = _offer(race_engine, "ONLYONCE", uses_per_coupon=1)
    responses = race(live_app, _sales(race_engine, keys, "ONLYONCE"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1), [r.get_json() for r in responses]
    losers = [r.get_json() for r in responses if r.status_code == 409]
    assert all("coupon_codes" in problem["errors"] for problem in losers)
    with Session(race_engine) as session:
        used = session.scalar(select(func.count()).where(CouponRedemption.offer_id == offer_id))
        assert used == 1
        assert get_offer(session, offer_id).redeemed_count == 1
    _ledger_clean(race_engine)


def test_a_budget_is_never_overspent_by_racing_sales(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    offer_id = _offer(race_engine, "BUDGET300", budget=300)
    responses = race(live_app, _sales(race_engine, keys, "BUDGET300"))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * (THREADS - 3)
    with Session(race_engine) as session:
        offer = session.get_one(Offer, offer_id)
        assert (offer.budget_used, offer.redeemed_count) == (300, 3)


def test_no_more_rewards_are_claimed_than_there_are_in_stock(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    offer_id = _offer(race_engine, "REWARDOFFER")
    with Session(race_engine) as session, session.begin():
        reward = create_reward(
            session,
            name="Free coffee",
            offer_id=offer_id,
            points_cost=100,
            stock=2,
            per_member_limit=None,
            refund_unused=True,
            actor="test",
            now=START,
        )
    posts = []
    for _ in range(THREADS):
        till, member, _qr = committed_till_and_member(race_engine, keys, points=500)
        posts.append(
            Post(f"/api/v1/members/{member.id}/rewards", {"reward_id": reward.id}, till.headers)
        )
    responses = race(live_app, posts)
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * (THREADS - 2)
    with Session(race_engine) as session:
        assert session.get_one(Reward, reward.id).claimed == 2
        assert session.scalar(select(func.count()).where(RewardClaim.reward_id == reward.id)) == 2
    _ledger_clean(race_engine)


def test_sales_carrying_two_limited_coupons_in_either_order_do_not_deadlock(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    _offer(race_engine, "ORDERXX", budget=10**9)
    _offer(race_engine, "ORDERYY", budget=10**9)
    posts = []
    for n in range(THREADS):
        till, _member, qr = committed_till_and_member(race_engine, keys)
        codes = ["ORDERXX", "ORDERYY"] if n % 2 else ["ORDERYY", "ORDERXX"]
        body = sale_body(f"RACE-ORDER-{n}", qr, START, coupon_codes=codes)
        posts.append(Post("/api/v1/pos/transactions", body, till.headers))
    responses = race(live_app, posts)
    assert [r.status_code for r in responses] == [201] * THREADS, [
        r.get_json() for r in responses if r.status_code != 201
    ]
