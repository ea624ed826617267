"""Earning rules are data: rows the marketer creates and changes; each change is audited, and a
change never alters points already earned (sales keep their own figures and breakdown)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class EarnRule(Base):
    __tablename__ = "earn_rules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(24))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    tiers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    stores: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    cap_points: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cap_period: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class EarnAward(Base):
    """Points one rule gave one member on one sale (or at enrolment): the breakdown the till
    and the member page show, what caps count, what campaign results measure."""

    __tablename__ = "earn_awards"
    __table_args__ = (Index("ix_earn_awards_member_id_rule_id", "member_id", "rule_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    rule_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("earn_rules.id"), nullable=True
    )
    sale_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sales.id"), nullable=True, index=True
    )
    points: Mapped[int] = mapped_column(BigInteger)
    awarded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # a voided or fully returned sale gives its capped bonuses back to the period
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
