from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import Base, BigIntPK, UtcDateTime


class SaleStatus(StrEnum):
    COMPLETED = "completed"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"
    VOIDED = "voided"


class Sale(Base):
    """A POS transaction. `(store_id, external_id)` makes it exactly-once; `result` is the first
    response, returned again on a replay."""

    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_sales_member_id_occurred_at", "member_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    store_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("stores.id"))
    terminal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("terminals.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id"), nullable=True
    )
    card_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    # what was paid for the goods not returned: what the sale counts towards a spend-based tier
    kept_total: Mapped[int] = mapped_column(BigInteger)
    points_earned: Mapped[int] = mapped_column(BigInteger)
    points_redeemed: Mapped[int] = mapped_column(BigInteger)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(24), default=SaleStatus.COMPLETED)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    void_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    lines: Mapped[list[SaleLine]] = relationship(
        order_by="SaleLine.line_no", cascade="all, delete-orphan"
    )


class SaleLine(Base):
    __tablename__ = "sale_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sale_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)  # this line's share of the basket discounts
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)


class SaleReturn(Base):
    __tablename__ = "sale_returns"
    __table_args__ = (UniqueConstraint("sale_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sale_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales.id"))
    terminal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("terminals.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    points_reversed: Mapped[int] = mapped_column(BigInteger)
    points_restored: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
