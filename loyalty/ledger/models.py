"""The points ledger. Entries are append-only; accounts and lots are derived views kept in step
with them in the same transaction, and `loyalty check-ledger` proves that they agree."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class EntryKind(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVERSE = "reverse"
    ADJUST = "adjust"
    BONUS = "bonus"
    REFERRAL = "referral"
    UNLOCK = "unlock"  # pending points that became available: points +r, pending_points -r


class PointAccount(Base):
    """A member's balances. `available` may go below zero only through a return of points the
    member had already spent (a debt that the next earning pays off); redemption never does."""

    __tablename__ = "point_accounts"
    __table_args__ = (CheckConstraint("pending >= 0", name="pending_not_negative"),)

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PointEntry(Base):
    __tablename__ = "point_entries"
    __table_args__ = (Index("ix_point_entries_member_id_id", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)  # change to `available`, signed
    pending_points: Mapped[int] = mapped_column(BigInteger, default=0)  # change to `pending`
    sale_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sales.id"), nullable=True, index=True
    )
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PointLot(Base):
    """Points earned together, with one expiry. Spending draws lots down, soonest expiry first."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        Index("ix_point_lots_member_id_expires_at", "member_id", "expires_at"),
        # Locked (pending) lots only: what a balance "as of now" and the unlock job look for.
        # The predicate is written as each database's rendering of `unlocked.is_(False)`, so
        # that the planners match it to the queries.
        Index(
            "ix_point_lots_member_id_unlocks_at_locked",
            "member_id",
            "unlocks_at",
            postgresql_where=text("unlocked IS false"),
            sqlite_where=text("unlocked IS 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("point_entries.id"))
    sale_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    unlocked: Mapped[bool] = mapped_column(Boolean, default=True)
    unlocks_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LotDraw(Base):
    """Which lots a debit drew from, so that reversing it puts every point back where it was."""

    __tablename__ = "point_lot_draws"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("point_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("point_lots.id"))
    points: Mapped[int] = mapped_column(BigInteger)
