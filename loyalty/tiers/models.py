"""Tiers and where each member stands. A member's tier lives in its own table so that reading
a member never pays for tier bookkeeping, and the review job can work set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class Tier(Base):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    rank: Mapped[int] = mapped_column(Integer, unique=True)  # higher is better
    # spend in minor units, or points, over the qualification window (program.tier_basis)
    threshold: Mapped[int] = mapped_column(BigInteger)
    earn_multiplier_percent: Mapped[int] = mapped_column(Integer, default=100)
    perks: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MemberTier(Base):
    __tablename__ = "member_tiers"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("tiers.id"), nullable=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    # a tier given by staff: the member never sits below it until `floor_until`
    floor_tier_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tiers.id"), nullable=True
    )
    floor_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # when a review first found the member below their tier: the grace period runs from here
    below_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


@dataclass(frozen=True)
class TierView:
    """A tier as tills, members and staff see it, wherever a tier is shown."""

    code: str
    name: str
    rank: int
    threshold: int
    earn_multiplier_percent: int
    perks: str
