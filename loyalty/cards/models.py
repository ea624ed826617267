from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class CardStatus(StrEnum):
    UNASSIGNED = "unassigned"  # printed in a batch, waiting to be handed over at a till
    ACTIVE = "active"
    BLOCKED = "blocked"


class CardBatch(Base):
    __tablename__ = "card_batches"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    size: Mapped[int]
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Card(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id"), nullable=True, index=True
    )
    batch_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("card_batches.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    blocked_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # the card that replaced this one: a card is replaced once
    replaced_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("cards.id"), nullable=True
    )
