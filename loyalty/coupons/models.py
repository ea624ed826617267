"""Offers (what a coupon gives, when and to whom), coupons (the codes), their redemptions with
each sale, code generation batches, and the rewards catalogue members buy with points."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class OfferStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"  # no new coupons, none redeemed; history kept


class CouponSource(StrEnum):
    SHARED = "shared"  # one code many people type ("SUMMER10")
    GENERATED = "generated"  # unique, from a generation batch (printed, unassigned)
    ASSIGNED = "assigned"  # unique, given to a member by a marketer (once per offer)
    NEXT_VISIT = "next_visit"  # issued at a qualifying sale, usable from the next day
    REWARD = "reward"  # bought with points from the rewards catalogue
    REFERRAL = "referral"  # a referral's reward


class CouponStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("redeemed_count >= 0 AND budget_used >= 0", name="counters_positive"),
        CheckConstraint(
            "total_redemptions IS NULL OR redeemed_count <= total_redemptions",
            name="total_redemptions_kept",
        ),
        CheckConstraint("budget IS NULL OR budget_used <= budget", name="budget_kept"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.ACTIVE)
    # what a coupon gives: loyalty.coupons.discounts.Benefit's fields
    kind: Mapped[str] = mapped_column(String(24))
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    cap: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    target: Mapped[str] = mapped_column(String(16), default="basket")
    skus: Mapped[list[str]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    buy_quantity: Mapped[int] = mapped_column(Integer, default=0)
    free_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # conditions
    min_basket: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    tier_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    store_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    segment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # limits (None: no limit)
    uses_per_coupon: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses_per_member: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses_per_member_per_period: Mapped[int | None] = mapped_column(Integer, nullable=True)
    period: Mapped[str | None] = mapped_column(String(8), nullable=True)  # day, week, month
    total_redemptions: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    redeemed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    budget_used: Mapped[int] = mapped_column(BigInteger, default=0)
    # stacking
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    combinable_with: Mapped[list[int]] = mapped_column(JSON, default=list)
    # "next visit": a sale of at least this much issues a coupon of this offer
    issue_at_sale_min: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    coupon_valid_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("uses >= 0", name="uses_positive"),
        # a marketer's assignment gives a member one coupon of an offer, however often it runs
        Index(
            "uq_coupons_assigned_once",
            "offer_id",
            "member_id",
            unique=True,
            postgresql_where=text("source = 'assigned'"),
            sqlite_where=text("source = 'assigned'"),
        ),
        Index("ix_coupons_member_id_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id"), index=True)
    # the lookup key: normalised (no dashes or spaces, upper case), unique in the program
    key: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(80))  # as printed
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CouponStatus.ACTIVE)
    member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id"), nullable=True
    )
    batch_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    # the sale that earned it (a next-visit or a referral coupon): its full return takes it back
    issued_by_sale_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RedemptionStatus(StrEnum):
    REDEEMED = "redeemed"
    RETURNED = "returned"  # given back by a full return or a void


class CouponRedemption(Base):
    """One coupon used in one sale, with what it gave then (later changes of the offer never
    alter it)."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("coupon_id", "sale_id"),
        Index("ix_coupon_redemptions_member_offer", "member_id", "offer_id", "redeemed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("coupons.id"))
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id"))
    offer_version: Mapped[int] = mapped_column(Integer)
    sale_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # money taken off the sale
    points: Mapped[int] = mapped_column(BigInteger, default=0)  # extra points it gave
    budget_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=RedemptionStatus.REDEEMED)
    redeemed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CodeBatch(Base):
    """Unique codes generated for an offer: the spec, and how far the job has got."""

    __tablename__ = "coupon_code_batches"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id"), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested: Mapped[int] = mapped_column(BigInteger)
    made: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # running, done, failed
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CouponAssignment(Base):
    """A marketer's list of members to give a coupon of an offer, worked through by the
    `assign-coupons` job a batch at a time (its progress here)."""

    __tablename__ = "coupon_assignments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id"), index=True)
    member_ids: Mapped[list[int]] = mapped_column(JSON)
    requested: Mapped[int] = mapped_column(BigInteger)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)
    assigned: Mapped[int] = mapped_column(BigInteger, default=0)
    already_had: Mapped[int] = mapped_column(BigInteger, default=0)
    not_members: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # running, done
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Reward(Base):
    """In the rewards catalogue: a coupon of `offer_id` members buy with points."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("stock IS NULL OR claimed <= stock", name="stock_kept"),
        CheckConstraint("points_cost > 0", name="cost_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id"))
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    claimed: Mapped[int] = mapped_column(BigInteger, default=0)
    per_member_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the points come back when the coupon is cancelled unused or expires unused
    refund_unused: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RewardClaim(Base):
    __tablename__ = "reward_claims"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    reward_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rewards.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    coupon_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("coupons.id"), unique=True)
    points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigInteger)  # the ledger's redemption entry
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # refunded
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
