"""Program settings: one row, created with DESIGN.md's defaults, changed by the operator."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from sqlalchemy import CheckConstraint, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.db import Base, UtcDateTime

PROGRAM_ID = 1


class ExpiryPolicy(StrEnum):
    MONTHS_AFTER_EARNING_MONTH = "months_after_earning_month"
    NEVER = "never"


class Program(Base):
    __tablename__ = "program"
    __table_args__ = (
        CheckConstraint("earn_points > 0 AND earn_per_minor > 0", name="earn_rate_positive"),
        CheckConstraint(
            "redeem_points > 0 AND redeem_value_minor > 0", name="redeem_rate_positive"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    # earn_points for every earn_per_minor of eligible spend, rounded down per transaction.
    earn_points: Mapped[int] = mapped_column(Integer)
    earn_per_minor: Mapped[int] = mapped_column(Integer)
    # redeem_points are worth redeem_value_minor off a basket.
    redeem_points: Mapped[int] = mapped_column(Integer)
    redeem_value_minor: Mapped[int] = mapped_column(Integer)
    pending_days: Mapped[int] = mapped_column(Integer, default=0)
    expiry_policy: Mapped[str] = mapped_column(String(40))
    expiry_months: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def default_program(now: datetime, currency: str = "EUR") -> Program:
    """DESIGN.md's defaults: 1 point per whole currency unit, 100 points = 1.00, 12 months."""
    unit = 10 ** get_currency_precision(currency)
    return Program(
        id=PROGRAM_ID,
        name="Loyalty",
        currency=currency,
        timezone="UTC",
        earn_points=1,
        earn_per_minor=unit,
        redeem_points=100,
        redeem_value_minor=unit,
        pending_days=0,
        expiry_policy=ExpiryPolicy.MONTHS_AFTER_EARNING_MONTH,
        expiry_months=12,
        updated_at=now,
    )


def get_program(session: Session) -> Program:
    program = session.scalars(select(Program).where(Program.id == PROGRAM_ID)).first()
    if program is None:
        msg = "the program is not configured: run `loyalty migrate` (it creates the defaults)"
        raise RuntimeError(msg)
    return program


def ensure_program(session: Session, now: datetime, currency: str = "EUR") -> Program:
    program = session.get(Program, PROGRAM_ID)
    if program is None:
        program = default_program(now, currency)
        session.add(program)
        session.flush()
    return program
