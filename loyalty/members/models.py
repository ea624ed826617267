from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime


class MemberStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    ERASED = "erased"


# Contacts stay reserved while a member is blocked, so a blocked member cannot enrol again
# under the same email; erasure releases them.
_HOLDS_CONTACTS = text("status <> 'erased'")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index(
            "uq_members_email_live",
            "email",
            unique=True,
            sqlite_where=_HOLDS_CONTACTS,
            postgresql_where=_HOLDS_CONTACTS,
        ),
        Index(
            "uq_members_phone_live",
            "phone",
            unique=True,
            sqlite_where=_HOLDS_CONTACTS,
            postgresql_where=_HOLDS_CONTACTS,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    email_consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sms_consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acquisition_source: Mapped[str | None] = mapped_column(String(80), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=MemberStatus.ACTIVE)
    enrolled_store_id: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsentChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class ConsentEvent(Base):
    """Every consent given or withdrawn, with when and through whom (a till, staff, the member
    themselves): the proof a regulator asks for. The member's `*_consent_at` columns hold the
    current state; this table holds how it came to be."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_member_id_id", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(8))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class MemberSignInCode(Base):
    """A one-time code emailed to a member to sign in to the member page: only its keyed hash
    is kept (loyalty/members/sign_in.py), with when it dies, how many wrong codes were tried
    against it and when it was used (once)."""

    __tablename__ = "member_sign_in_codes"
    __table_args__ = (Index("ix_member_sign_in_codes_member_id_id", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
