"""Staff API keys: the marketer's console and integrations. Each key carries scopes, is shown
once and kept only as a hash, like a terminal's. Staff accounts: the people who sign in to the
pages (the till, the console) with a username and a password kept as an argon2 hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class StaffKey(Base):
    __tablename__ = "staff_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class StaffRole(StrEnum):
    CASHIER = "cashier"  # works a till of their store
    STORE_MANAGER = "store_manager"  # runs their store, works its tills too
    MARKETER = "marketer"  # the console: offers, segments, campaigns; never a till
    ADMIN = "admin"  # everything but a till


class StaffAccount(Base):
    """A person who signs in. Cashiers and store managers belong to one store; marketers and
    admins to none (loyalty/staff/accounts.py keeps it so)."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)  # lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("stores.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
