"""Program settings: one row, created with DESIGN.md's defaults, changed by the operator."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from sqlalchemy import CheckConstraint, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.audit.services import record
from loyalty.db import Base, UtcDateTime
from loyalty.errors import InvalidInput

PROGRAM_ID = 1


class ExpiryPolicy(StrEnum):
    MONTHS_AFTER_EARNING = "months_after_earning"  # N months after the day earned
    MONTHS_AFTER_EARNING_MONTH = "months_after_earning_month"  # the end of that month N later
    END_OF_YEAR = "end_of_year"  # the end of the calendar year N months after earning
    NEVER = "never"


class TierBasis(StrEnum):
    SPEND = "spend"  # what members paid, in minor units, net of returns
    POINTS = "points"  # points earned on sales, net of returns


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
    reminder_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    tier_basis: Mapped[str] = mapped_column(String(8), default="spend", server_default="spend")
    tier_window_months: Mapped[int] = mapped_column(Integer, default=12, server_default="12")
    tier_grace_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # at most this many coupons apply to one basket
    coupons_per_basket: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # A new random token whenever rules or tiers change: processes may keep what they read
    # for a token, since a token never comes back (even after a rollback).
    config_version: Mapped[str] = mapped_column(String(32), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ProgramSettings:
    """The program as every sale reads it: a plain value, read with one small query."""

    name: str
    currency: str
    timezone: str
    earn_points: int
    earn_per_minor: int
    redeem_points: int
    redeem_value_minor: int
    pending_days: int
    expiry_policy: str
    expiry_months: int
    reminder_days: int = 30
    tier_basis: str = TierBasis.SPEND
    tier_window_months: int = 12
    tier_grace_days: int = 30
    coupons_per_basket: int = 3
    config_version: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_SETTINGS = [f.name for f in fields(ProgramSettings)]
_READ_SETTINGS = select(*(getattr(Program, name) for name in _SETTINGS)).where(
    Program.id == PROGRAM_ID
)


def default_settings(currency: str = "EUR") -> ProgramSettings:
    """DESIGN.md's defaults: 1 point per whole currency unit, 100 points = 1.00, 12 months."""
    unit = 10 ** get_currency_precision(currency)
    return ProgramSettings(
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
    )


def get_program(session: Session) -> ProgramSettings:
    row = session.connection().execute(_READ_SETTINGS).first()
    if row is None:
        msg = "the program is not configured: run `loyalty migrate` (it creates the defaults)"
        raise RuntimeError(msg)
    return ProgramSettings(**row._asdict())


_program_table = Program.__table__


def new_config_version(session: Session) -> None:
    """Rules or tiers changed: every process reads them again at its next sale."""
    session.flush()
    session.connection().execute(
        update(_program_table)  # type: ignore[arg-type]
        .where(_program_table.c.id == PROGRAM_ID)
        .values(config_version=secrets.token_hex(16))
    )


def update_program(
    session: Session, *, actor: str, now: datetime, **changes: object
) -> ProgramSettings:
    """Change settings, audited with before and after. Points already earned keep their
    terms: lots carry their own expiry and sales their own figures."""
    if not changes:
        raise InvalidInput("name at least one setting to change", field="_body")
    unknown = changes.keys() - (set(_SETTINGS) - {"config_version"})
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    program = session.get(Program, PROGRAM_ID)
    if program is None:
        msg = "the program is not configured: run `loyalty migrate`"
        raise RuntimeError(msg)
    before = {name: getattr(program, name) for name in changes}
    for name, value in changes.items():
        setattr(program, name, value)
    program.updated_at = now
    record(
        session,
        actor=actor,
        action="program.update",
        subject_type="program",
        subject_id=PROGRAM_ID,
        now=now,
        before=before,
        after=changes,
    )
    session.flush()
    return get_program(session)


def ensure_program(session: Session, now: datetime, currency: str = "EUR") -> Program:
    program = session.get(Program, PROGRAM_ID)
    if program is None:
        program = Program(id=PROGRAM_ID, updated_at=now, **asdict(default_settings(currency)))
        session.add(program)
        session.flush()
    return program
