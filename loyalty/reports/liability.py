"""The points liability: what the programme owes its members now, and how it moved by month.

Every figure is a whole number of points unless it says otherwise; money is integer minor units
beside the program's currency, ratios are Decimals. Nothing is a float.

- outstanding: available + pending, summed over members' positive balances only. A negative
  `available` (a return took back points the member had already spent) is a debt: it is shown
  apart as `points_owed` and never netted against what other members hold. This is today's
  figure (`as_of`), whatever the window.
- value: outstanding x redeem_value_minor / redeem_points, rounded down to a minor unit.
- per month, by when each entry was written, in the program's time zone. An entry's change is
  `points + pending_points`, so pending points count as earned when earned, and moving them
  from pending to available (`unlock`) changes nothing:

  earned            earn, bonus and referral entries, and adjustments that added points
  redeemed          redeem entries, less redemptions given back by a return or void
                    (reverse entries that add points), in the month the return happened
  expired           expire entries
  reversed          points that returns and voids took back (reverse entries that remove points)
  adjusted_added    adjustments that added points (already counted in earned)
  adjusted_removed  adjustments that removed points
  other             kinds this report does not know (zero unless a new kind appears)
  net               the change of all balances:
                    earned - redeemed - expired - reversed - adjusted_removed + other

- breakage: expired / earned, for the window and over all time, as a Decimal to four places
  and in basis points; None when nothing was earned.

Every month of the window is listed; a month without activity is all zeros, so a table or a
chart has no gaps.

Months in the program's time zone. PostgreSQL converts each timestamp itself
(`to_char(timezone(zone, created_at), 'YYYY-MM')`). SQLite knows no time zones, and a UTC offset
is not one number across a year with daylight saving, so there the UTC instants at which each
local month starts are computed in Python (zoneinfo, as lot expiry is) and the database buckets
with one CASE over those bounds. Both are exact for any zone, half-hour offsets included, and
both GROUP BY month in the database: one query for the window, one for all time, one for the
balances, however many members and entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from sqlalchemy import ColumnElement, String, case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from loyalty.clock import add_months
from loyalty.errors import InvalidInput
from loyalty.ledger.models import EntryKind, PointAccount, PointEntry
from loyalty.program import get_program

DEFAULT_MONTHS = 12
MAX_MONTHS = 120
FIRST_YEAR, LAST_YEAR = 1970, 9998
EARNING_KINDS = (EntryKind.EARN, EntryKind.BONUS, EntryKind.REFERRAL)
RATIO_PLACES = Decimal("0.0001")
BASIS_POINTS = 10_000

_MONTH_TEXT = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str, *, field: str) -> Month:
        match = _MONTH_TEXT.fullmatch(text.strip())
        if (
            match is None
            or not 1 <= int(match[2]) <= 12  # noqa: PLR2004 - months in a year
            or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR
        ):
            raise InvalidInput(
                f"a month is written YYYY-MM, from {FIRST_YEAR}-01 to {LAST_YEAR}-12, e.g. 2026-01",
                field=field,
            )
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def plus(self, months: int) -> Month:
        return Month(*add_months(self.year, self.month, months))

    def starts_at(self, zone: ZoneInfo) -> datetime:
        """The UTC instant at which this month begins in `zone`."""
        return datetime(self.year, self.month, 1, tzinfo=zone).astimezone(UTC)

    @property
    def number(self) -> int:
        return self.year * 12 + self.month - 1

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Movements:
    """How balances moved in one month (or in a window, `month` then naming it)."""

    month: str
    earned: int = 0
    redeemed: int = 0
    expired: int = 0
    reversed: int = 0
    adjusted_added: int = 0
    adjusted_removed: int = 0
    other: int = 0
    net: int = 0


MOVEMENT_FIGURES = (
    "earned",
    "redeemed",
    "expired",
    "reversed",
    "adjusted_added",
    "adjusted_removed",
    "other",
    "net",
)


@dataclass(frozen=True)
class Breakage:
    expired: int
    earned: int
    ratio: Decimal | None
    basis_points: int | None


@dataclass(frozen=True)
class LiabilityReport:
    as_of: datetime
    currency: str
    timezone: str
    redeem_points: int
    redeem_value_minor: int
    outstanding_points: int
    available_points: int
    pending_points: int
    members_with_points: int
    points_owed: int
    members_owing: int
    value_minor: int
    from_month: str
    to_month: str
    months: list[Movements]
    window: Movements
    breakage_window: Breakage
    breakage_overall: Breakage

    @property
    def value_text(self) -> str:
        return money_text(self.value_minor, self.currency)


def money_text(minor: int, currency: str) -> str:
    """1234 EUR -> "12.34 EUR", with the currency's own number of decimals; integers only."""
    places = get_currency_precision(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{sign}{number} {currency}"


def report_months(
    now: datetime, zone: ZoneInfo, from_month: str | None, to_month: str | None
) -> list[Month]:
    """The window: `to` defaults to the current month, `from` to eleven months before `to`."""
    last = Month.parse(to_month, field="to") if to_month else Month.of(now, zone)
    first = (
        Month.parse(from_month, field="from") if from_month else last.plus(-(DEFAULT_MONTHS - 1))
    )
    if first > last:
        raise InvalidInput(f"the window starts ({first}) after it ends ({last})", field="from")
    count = last.number - first.number + 1
    if count > MAX_MONTHS:
        raise InvalidInput(
            f"a report covers at most {MAX_MONTHS} months; {first} to {last} is {count}",
            field="from",
        )
    return [first.plus(i) for i in range(count)]


def _breakage(expired: int, earned: int) -> Breakage:
    if earned <= 0:
        return Breakage(expired=expired, earned=earned, ratio=None, basis_points=None)
    ratio = (Decimal(expired) / Decimal(earned)).quantize(RATIO_PLACES, rounding=ROUND_HALF_EVEN)
    return Breakage(
        expired=expired, earned=earned, ratio=ratio, basis_points=int(ratio * BASIS_POINTS)
    )


def _figures(
    kind: ColumnElement[Any] | InstrumentedAttribute[str], change: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """One SUM per figure over entries with `kind` and signed `change`, in MOVEMENT_FIGURES
    order, except `other`, which is what the rest leave unexplained (computed afterwards)."""

    def total(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    adds, removes = change > 0, change < 0
    adjust = kind == EntryKind.ADJUST.value
    reverse = kind == EntryKind.REVERSE.value
    return [
        total(kind.in_([k.value for k in EARNING_KINDS]) | (adjust & adds), change),
        total((kind == EntryKind.REDEEM.value) | (reverse & adds), -change),
        total(kind == EntryKind.EXPIRE.value, -change),
        total(reverse & removes, -change),
        total(adjust & adds, change),
        total(adjust & removes, -change),
        func.coalesce(func.sum(change), 0),
    ]


def _movements(month: str, sums: tuple[Any, ...]) -> Movements:
    earned, redeemed, expired, reversed_, added, removed, net = (int(s) for s in sums)
    explained = earned - redeemed - expired - reversed_ - removed
    return Movements(
        month=month,
        earned=earned,
        redeemed=redeemed,
        expired=expired,
        reversed=reversed_,
        adjusted_added=added,
        adjusted_removed=removed,
        other=net - explained,
        net=net,
    )


def _month_of_entry(dialect: str, zone: ZoneInfo, months: list[Month]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        local = func.timezone(literal(zone.key, String()), PointEntry.created_at)
        return func.to_char(local, "YYYY-MM")
    # Elsewhere (SQLite): the UTC instant at which each month of the window ends, in order.
    # Entries are already limited to the window, so the first bound an entry is under names
    # its month.
    return case(
        *(
            (PointEntry.created_at < month.plus(1).starts_at(zone), literal(str(month)))
            for month in months
        ),
        else_=None,
    )


def _monthly(session: Session, zone: ZoneInfo, months: list[Month]) -> dict[str, Movements]:
    start, end = months[0].starts_at(zone), months[-1].plus(1).starts_at(zone)
    dialect = session.get_bind().dialect.name
    in_window = [PointEntry.created_at >= start, PointEntry.created_at < end]
    if dialect == "postgresql":
        # The database's own conversion decides the month; a day's margin keeps every entry
        # it may place in the window, and the label filter below keeps exactly those.
        in_window = [
            PointEntry.created_at >= start - timedelta(days=1),
            PointEntry.created_at < end + timedelta(days=1),
        ]
    entries = (
        select(
            _month_of_entry(dialect, zone, months).label("month"),
            PointEntry.kind.label("kind"),
            (PointEntry.points + PointEntry.pending_points).label("change"),
        )
        .where(*in_window)
        .subquery()
    )
    rows = session.execute(
        select(entries.c.month, *_figures(entries.c.kind, entries.c.change))
        .where(entries.c.month.between(str(months[0]), str(months[-1])))
        .group_by(entries.c.month)
    )
    return {row[0]: _movements(row[0], tuple(row[1:])) for row in rows}


def _all_time(session: Session) -> Movements:
    change = PointEntry.points + PointEntry.pending_points
    row = session.execute(select(*_figures(PointEntry.kind, change))).one()
    return _movements("all", tuple(row))


def _window_total(label: str, months: list[Movements]) -> Movements:
    totals = {name: sum(getattr(m, name) for m in months) for name in MOVEMENT_FIGURES}
    return Movements(month=label, **totals)


def liability_report(
    session: Session,
    *,
    now: datetime,
    from_month: str | None = None,
    to_month: str | None = None,
) -> LiabilityReport:
    """`from_month` and `to_month` are YYYY-MM in the program's time zone (default: the last
    twelve months, this one included)."""
    program = get_program(session)
    zone = program.zone
    months = report_months(now, zone, from_month, to_month)
    by_month = _monthly(session, zone, months)
    listed = [by_month.get(str(month)) or Movements(month=str(month)) for month in months]
    window = _window_total(f"{months[0]}..{months[-1]}", listed)
    overall = _all_time(session)

    available = PointAccount.available
    balances = session.execute(
        select(
            func.coalesce(func.sum(case((available > 0, available), else_=0)), 0),
            func.coalesce(func.sum(PointAccount.pending), 0),
            func.coalesce(func.sum(case((available < 0, -available), else_=0)), 0),
            func.count(case(((available > 0) | (PointAccount.pending > 0), 1))),
            func.count(case((available < 0, 1))),
        )
    ).one()
    positive_available, pending, owed, holding, owing = (int(v) for v in balances)
    outstanding = positive_available + pending
    return LiabilityReport(
        as_of=now,
        currency=program.currency,
        timezone=program.timezone,
        redeem_points=program.redeem_points,
        redeem_value_minor=program.redeem_value_minor,
        outstanding_points=outstanding,
        available_points=positive_available,
        pending_points=pending,
        members_with_points=holding,
        points_owed=owed,
        members_owing=owing,
        value_minor=outstanding * program.redeem_value_minor // program.redeem_points,
        from_month=str(months[0]),
        to_month=str(months[-1]),
        months=listed,
        window=window,
        breakage_window=_breakage(window.expired, window.earned),
        breakage_overall=_breakage(overall.expired, overall.earned),
    )
