"""When a lot expires, by the program's policy, in the program's time zone.

`expires_at` is the first instant at which the points are gone: a local midnight. The day before
it is the last day the points can be spent, which is the date members are told
(`last_day`). Policies, with N = program.expiry_months:

- months_after_earning: through the same day of the month N months after the day earned,
  clamped to the end of a shorter month (earned 31 January, N = 1: through 28 or 29 February);
- months_after_earning_month: through the end of the month N months after the month earned
  (earned any day of November 2026, N = 12: through 30 November 2027);
- end_of_year: through 31 December of the year in which the day earned + N months falls
  (earned 14 March 2026, N = 12: through 31 December 2027; N = 0: through 31 December 2026);
- never: no expiry.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from loyalty.clock import add_months
from loyalty.program import ExpiryPolicy, ProgramSettings


def last_spendable_day(program: ProgramSettings, earned_on: date) -> date | None:
    """The last local day on which points earned on `earned_on` can be spent."""
    months = program.expiry_months
    if program.expiry_policy == ExpiryPolicy.NEVER:
        return None
    year, month = add_months(earned_on.year, earned_on.month, months)
    if program.expiry_policy == ExpiryPolicy.MONTHS_AFTER_EARNING:
        return date(year, month, min(earned_on.day, calendar.monthrange(year, month)[1]))
    if program.expiry_policy == ExpiryPolicy.MONTHS_AFTER_EARNING_MONTH:
        return date(year, month, calendar.monthrange(year, month)[1])
    if program.expiry_policy == ExpiryPolicy.END_OF_YEAR:
        return date(year, 12, 31)
    msg = f"unknown expiry policy {program.expiry_policy!r}"
    raise ValueError(msg)


def lot_expiry(program: ProgramSettings, earned_at: datetime) -> datetime | None:
    """The instant (UTC) at which points earned at `earned_at` expire: the local midnight that
    ends their last spendable day."""
    zone = ZoneInfo(program.timezone)
    last_day = last_spendable_day(program, earned_at.astimezone(zone).date())
    if last_day is None:
        return None
    return local_midnight(last_day + timedelta(days=1), zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def last_day(expires_at: datetime, zone: ZoneInfo) -> date:
    """The last local day on which a lot expiring at `expires_at` can still be spent."""
    return (expires_at.astimezone(zone) - timedelta(microseconds=1)).date()
