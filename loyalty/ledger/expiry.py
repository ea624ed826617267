"""When a lot expires, by the program's policy, in the program's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from loyalty.program import ExpiryPolicy, ProgramSettings


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def lot_expiry(program: ProgramSettings, earned_at: datetime) -> datetime | None:
    """DESIGN.md: points expire N months after the month they were earned: a point earned on
    any day of November 2026 with N = 12 lasts until the end of November 2027."""
    if program.expiry_policy == ExpiryPolicy.NEVER:
        return None
    zone = ZoneInfo(program.timezone)
    local = earned_at.astimezone(zone)
    year, month = add_months(local.year, local.month, program.expiry_months + 1)
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)
