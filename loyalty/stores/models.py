from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import Base, BigIntPK, UtcDateTime


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TerminalLike(Protocol):
    """A terminal as the services need it: the ORM row or `stores.services.TerminalRef`."""

    @property
    def id(self) -> int: ...

    @property
    def store_id(self) -> int: ...

    @property
    def store_code(self) -> str: ...

    @property
    def actor(self) -> str: ...


class Terminal(Base):
    """A till. Its API key is shown once; only the SHA-256 of its secret part is kept."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    store_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    # during a rotation the key it replaced keeps working until `previous_key_valid_until`
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_key_valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    store: Mapped[Store] = relationship()

    @property
    def actor(self) -> str:
        return f"terminal:{self.id}"

    @property
    def store_code(self) -> str:
        return self.store.code
