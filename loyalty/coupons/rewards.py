"""The rewards catalogue: coupons members buy with points. A claim takes the points and issues
the coupon in one unit of work; stock is taken with a conditional UPDATE, so no more are
claimed than there are, whatever the races. The points come back when the coupon is cancelled
unused, or expires unused (the `refund-expired-rewards` job), if the reward says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.coupons import services
from loyalty.coupons.models import (
    Coupon,
    CouponSource,
    CouponStatus,
    Offer,
    Reward,
    RewardClaim,
)
from loyalty.coupons.offers import InvalidOffer, benefit_of, get_offer_row
from loyalty.coupons.services import CouponView, describe, issue_coupon
from loyalty.db import MAX_ID
from loyalty.errors import Conflict, NotFound, RuleViolation
from loyalty.idempotency import Idempotency, once
from loyalty.ledger import services as ledger
from loyalty.ledger.models import PointAccount
from loyalty.members.models import Member, MemberStatus
from loyalty.results import Outcome
from loyalty.stores.access import TillViewer


@dataclass(frozen=True)
class RewardView:
    id: int
    name: str
    offer_id: int
    gives: str
    points_cost: int
    stock: int | None
    left: int | None
    per_member_limit: int | None
    refund_unused: bool
    active: bool


@dataclass(frozen=True)
class Claimed:
    reward_id: int
    coupon_code: str
    points: int
    balance: ledger.Balance


class OutOfStock(Conflict):
    title = "Out of stock"


def _view(reward: Reward, offer: Offer) -> RewardView:
    return RewardView(
        id=reward.id,
        name=reward.name,
        offer_id=reward.offer_id,
        gives=describe(benefit_of(offer)),
        points_cost=reward.points_cost,
        stock=reward.stock,
        left=None if reward.stock is None else reward.stock - reward.claimed,
        per_member_limit=reward.per_member_limit,
        refund_unused=reward.refund_unused,
        active=reward.active,
    )


def create_reward(
    session: Session,
    *,
    name: str,
    offer_id: int,
    points_cost: int,
    stock: int | None,
    per_member_limit: int | None,
    refund_unused: bool,
    actor: str,
    now: datetime,
) -> RewardView:
    offer = get_offer_row(session, offer_id)
    errors: dict[str, list[str]] = {}
    if offer.status != "active":
        errors["offer_id"] = ["the offer is archived"]
    if points_cost < 1:
        errors["points_cost"] = ["must be at least 1"]
    for field, value in (("stock", stock), ("per_member_limit", per_member_limit)):
        if value is not None and value < 0:
            errors[field] = ["cannot be below zero"]
    if not name.strip():
        errors["name"] = ["a reward needs a name"]
    if errors:
        raise InvalidOffer("the reward has invalid fields: see errors", errors=errors)
    reward = Reward(
        name=name.strip(),
        offer_id=offer.id,
        points_cost=points_cost,
        stock=stock,
        claimed=0,
        per_member_limit=per_member_limit,
        refund_unused=refund_unused,
        active=True,
        created_at=now,
    )
    session.add(reward)
    session.flush()
    record(
        session,
        actor=actor,
        action="reward.create",
        subject_type="reward",
        subject_id=reward.id,
        now=now,
        offer_id=offer.id,
        points_cost=points_cost,
        stock=stock,
    )
    return _view(reward, offer)


def list_rewards(session: Session, *, include_inactive: bool = False) -> list[RewardView]:
    query = select(Reward, Offer).join(Offer, Offer.id == Reward.offer_id).order_by(Reward.id)
    if not include_inactive:
        query = query.where(Reward.active.is_(True), Offer.status == "active")
    return [_view(reward, offer) for reward, offer in session.execute(query).all()]


def _reward(session: Session, reward_id: int) -> tuple[Reward, Offer]:
    found = (
        session.execute(
            select(Reward, Offer)
            .join(Offer, Offer.id == Reward.offer_id)
            .where(Reward.id == reward_id)
        ).first()
        if 0 < reward_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound(f"no reward has id {reward_id}", field="reward_id")
    return found[0], found[1]


def claim_reward(
    session: Session, *, member_id: int, reward_id: int, actor: str, now: datetime
) -> Claimed:
    """Buy the reward with points: the points are taken, the stock counted and the coupon
    issued together, or nothing happens."""
    reward, offer = _reward(session, reward_id)
    if not reward.active or offer.status != "active":
        raise RuleViolation("this reward is no longer offered", field="reward_id")
    status = session.scalar(select(Member.status).where(Member.id == member_id))
    if status != MemberStatus.ACTIVE:
        raise NotFound(f"no member has id {member_id}", field="member_id")
    if reward.per_member_limit is not None:
        # the member's account row is locked: their claims are counted with none in between
        session.execute(
            select(PointAccount.member_id)
            .where(PointAccount.member_id == member_id)
            .with_for_update()
        )
        claimed = session.scalar(
            select(func.count()).where(
                RewardClaim.member_id == member_id,
                RewardClaim.reward_id == reward.id,
                RewardClaim.status == "claimed",
            )
        )
        if int(claimed or 0) >= reward.per_member_limit:
            raise RuleViolation(
                f"a member may claim this reward {reward.per_member_limit} times",
                field="reward_id",
            )
    session.flush()
    taken = (
        session.connection()
        .execute(
            update(Reward)
            .where(
                Reward.id == reward.id, (Reward.stock.is_(None)) | (Reward.claimed < Reward.stock)
            )
            .values(claimed=Reward.claimed + 1)
        )
        .rowcount
    )
    if not taken:
        raise OutOfStock("this reward is out of stock", field="reward_id")
    spent = ledger.redeem(
        session,
        member_id=member_id,
        points=reward.points_cost,
        reason=f"reward {reward.name}",
        actor=actor,
        now=now,
    )
    coupon = issue_coupon(session, offer, member_id=member_id, source=CouponSource.REWARD, now=now)
    session.add(
        RewardClaim(
            reward_id=reward.id,
            member_id=member_id,
            coupon_id=coupon.id,
            points=reward.points_cost,
            entry_id=spent.entry_id,
            status="claimed",
            claimed_at=now,
        )
    )
    record(
        session,
        actor=actor,
        action="reward.claim",
        subject_type="member",
        subject_id=member_id,
        now=now,
        reward_id=reward.id,
        coupon_id=coupon.id,
        points=reward.points_cost,
    )
    session.flush()
    return Claimed(reward.id, coupon.code, reward.points_cost, spent.balance)


def refund_claim(
    session: Session, coupon_id: int, *, reason: str, actor: str, now: datetime
) -> int:
    """The points of a reward whose coupon was never used come back (once): how many."""
    claim = session.scalar(
        select(RewardClaim)
        .join(Reward, Reward.id == RewardClaim.reward_id)
        .join(Coupon, Coupon.id == RewardClaim.coupon_id)
        .where(
            RewardClaim.coupon_id == coupon_id,
            RewardClaim.status == "claimed",
            Reward.refund_unused.is_(True),
            Coupon.uses == 0,
        )
        .with_for_update()
    )
    if claim is None:
        return 0
    claim.status, claim.refunded_at = "refunded", now
    ledger.reverse_redemption(
        session, redemption_id=claim.entry_id, reason=reason, actor=actor, now=now
    )
    session.flush()
    return claim.points


def refund_expired_rewards(session: Session, now: datetime, actor: str = "job:rewards") -> int:
    """The job: reward coupons that expired unused give their points back. How many claims."""
    expired = list(
        session.scalars(
            select(RewardClaim.coupon_id)
            .join(Coupon, Coupon.id == RewardClaim.coupon_id)
            .join(Offer, Offer.id == Coupon.offer_id)
            .where(
                RewardClaim.status == "claimed",
                Coupon.uses == 0,
                (Coupon.valid_until <= now) | (Offer.ends_at <= now),
            )
            .order_by(RewardClaim.id)
            .limit(1000)
        )
    )
    refunded = 0
    for coupon_id in expired:
        if refund_claim(session, coupon_id, reason="reward expired unused", actor=actor, now=now):
            refunded += 1
            session.execute(
                update(Coupon)
                .where(Coupon.id == coupon_id, Coupon.status == CouponStatus.ACTIVE)
                .values(status=CouponStatus.CANCELLED, cancelled_at=now)
            )
    return refunded


def cancel_coupon(session: Session, code: str, *, actor: str, now: datetime) -> CouponView:
    """Cancel a coupon; a reward's coupon never used gives its points back."""
    cancelled = services.cancel_coupon(session, code, actor=actor, now=now)
    refund_claim(session, cancelled.id, reason="reward cancelled unused", actor=actor, now=now)
    return cancelled


def claim_reward_once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    member_id: int,
    reward_id: int,
    actor: str,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Outcome[Claimed]:
    """`claim_reward` once per Idempotency-Key; a till claims for members it may read."""

    def run() -> Claimed:
        enrolled = session.execute(
            select(Member.enrolled_store_id).where(Member.id == member_id)
        ).first()
        if enrolled is None or (viewer is not None and not viewer.sees(member_id, enrolled[0])):
            raise NotFound(f"no member has id {member_id}", field="member_id")
        return claim_reward(session, member_id=member_id, reward_id=reward_id, actor=actor, now=now)

    return once(
        session,
        idempotency,
        operation="reward.claim",
        request={"member_id": member_id, "reward_id": reward_id},
        result_type=Claimed,
        run=run,
        now=now,
        member_of=lambda _claimed: member_id,
    )
