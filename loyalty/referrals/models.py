"""Referrals ("friend brings friend"): each member's code, the link opens it drew, the referrals
recorded at enrolment with what became of them, the program's terms, and what the fraud guards
remember: keyed digests of every contact ever enrolled and the payment fingerprints seen."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import Base, BigIntPK, UtcDateTime

SETTINGS_ID = 1


class ReferralStatus(StrEnum):
    PENDING = "pending"  # waiting for the friend's first qualifying purchase
    REWARDED = "rewarded"  # qualified; both sides rewarded as the terms said then
    REVERSED = "reversed"  # the qualifying sale was fully returned in time: rewards taken back
    REFUSED = "refused"  # a fraud guard or the terms said no (see `reason`)


class RefusalReason(StrEnum):
    """Why a referral was refused: Talon.One's words where it has them."""

    DISABLED = "disabled"
    UNKNOWN_CODE = "unknown_code"
    ALREADY_REFERRED = "already_referred"
    SAME_AS_ADVOCATE = "same_as_advocate"
    ALREADY_MEMBER = "already_member"
    CIRCULAR = "circular"
    CAP_REACHED = "cap_reached"


class ContactKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class ReferralSettings(Base):
    """The program's referral terms: one row (created with the defaults on the first change).
    Points are whole points, `min_purchase` minor units. An offer id gives that side a coupon
    of the offer instead of points."""

    __tablename__ = "referral_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint(
            "min_purchase >= 0 AND referrer_points >= 0 AND referee_points >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint(
            "qualify_within_days > 0 AND reversal_window_days >= 0", name="windows_valid"
        ),
        CheckConstraint("monthly_cap IS NULL OR monthly_cap > 0", name="cap_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    min_purchase: Mapped[int] = mapped_column(BigInteger)
    qualify_within_days: Mapped[int] = mapped_column(Integer)
    referrer_points: Mapped[int] = mapped_column(BigInteger)
    referee_points: Mapped[int] = mapped_column(BigInteger)
    referrer_offer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("offers.id"), nullable=True
    )
    referee_offer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("offers.id"), nullable=True
    )
    monthly_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no cap
    reversal_window_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MemberReferralCode(Base):
    """A member's code, made the first time it is asked for. Its row is also the lock that
    serialises the referrals made with it (the monthly cap holds under races)."""

    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id"), primary_key=True, autoincrement=False
    )
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralLinkOpen(Base):
    """How often a member's link was opened, per day in the program's time zone: the funnel's
    "invited" (a counter per day, not a row per open)."""

    __tablename__ = "referral_link_opens"

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id"), primary_key=True, autoincrement=False
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    opened: Mapped[int] = mapped_column(BigInteger)


class Referral(Base):
    """One new member (the referee) who enrolled with a code, and what became of it. A referee
    has one referral whatever its fate (the unique index keeps it so under races). What each
    side was given is kept, so a reversal takes back exactly that."""

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_referrer_id_created_at", "referrer_id", "created_at"),
        Index("ix_referrals_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    referee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), unique=True)
    # None when the code matched nobody
    referrer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id"), nullable=True
    )
    code: Mapped[str] = mapped_column(String(32))  # as typed, normalised
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(24), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # a purchase after this no longer qualifies (the window as it was when the friend enrolled)
    qualify_by: Mapped[datetime] = mapped_column(UtcDateTime)
    qualified_sale_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sales.id"), nullable=True, index=True
    )
    qualified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    rewarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    referrer_points: Mapped[int] = mapped_column(BigInteger, default=0)
    referee_points: Mapped[int] = mapped_column(BigInteger, default=0)
    referrer_offer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    referee_offer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # a full return of the qualifying sale until then takes the rewards back
    reversible_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ReferralContact(Base):
    """A keyed digest (HMAC-SHA256) of every email and phone number a member enrolled with,
    one row per member who had it. A digest is not reversible personal data: without the
    key nobody can tell which contact it came from, and even with it only by guessing the
    contact. It is kept after an erasure, on purpose: it is how the programme tells that a
    "new" member with a referral code was a member before (a fraud check, a legitimate
    interest), and it is never shown or exported."""

    __tablename__ = "referral_contacts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id"), primary_key=True, autoincrement=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralPaymentFingerprint(Base):
    """Payment fingerprints a POS sent with a member's sales (as a SHA-256 of what it sent:
    never the fingerprint itself), so that a friend who pays with the referrer's card is seen."""

    __tablename__ = "referral_payment_fingerprints"

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id"), primary_key=True, autoincrement=False
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
