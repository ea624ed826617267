"""Evaluating earning rules: pure functions over plain data, so the till's quote, the committed
sale and the tests all compute points the same way, without a database.

Evaluation order - documented in README ("Earning rules") and fixed, never "the most recently
edited rule wins":

1. Rules that do not apply are dropped: outside their active window, another store, another tier.
2. Exclusions take their SKUs and categories out of the eligible spend (tobacco, gift cards...).
   Excluded lines earn nothing from any rule.
3. The base rate: the spend rule with the lowest priority number gives points on the eligible
   paid amount, rounded once per sale by its rounding mode. Without a spend rule, the program's
   own rate applies (rounded down).
4. Bonus rules (product, promotion, visit, birthday, first purchase, tier multiplier), in order
   of priority, then id. Each gives its points, cut to what its per-member cap has left. A rule
   that gives points and does not stack ends the evaluation: the rules after it give nothing.
   Multipliers add (factor - 1) x the base points of the lines they cover, so a tier x1.5 and a
   promotion x2 give base x 2.5: multipliers add up, they do not compound.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class RuleKind(StrEnum):
    SPEND = "spend"
    PRODUCT = "product"
    EXCLUSION = "exclusion"
    VISIT = "visit"
    PROMOTION = "promotion"
    BIRTHDAY = "birthday"
    SIGNUP = "signup"
    FIRST_PURCHASE = "first_purchase"
    TIER_MULTIPLIER = "tier_multiplier"


class Rounding(StrEnum):
    DOWN = "down"
    NEAREST = "nearest"  # halves round up
    UP = "up"


class CapPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: RuleKind
    params: Mapping[str, Any]
    priority: int = 100
    stackable: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    tiers: frozenset[str] | None = None  # tier codes; None: every member
    stores: frozenset[str] | None = None  # store codes; None: every store
    cap_points: int | None = None
    cap_period: CapPeriod | None = None


@dataclass(frozen=True)
class PaidLine:
    """A basket line as it was paid: after its share of the discounts."""

    sku: str
    category: str | None
    quantity: int
    paid: int


@dataclass(frozen=True)
class BaseRate:
    points: int
    per_minor: int
    rounding: Rounding = Rounding.DOWN

    def points_for(self, amount: int) -> int:
        return divide(max(amount, 0) * self.points, self.per_minor, self.rounding)


@dataclass(frozen=True)
class EarnContext:
    occurred_at: datetime
    zone: ZoneInfo
    default_rate: BaseRate
    lines: tuple[PaidLine, ...]
    store_code: str | None = None
    tier_code: str | None = None
    tier_multiplier_percent: int = 100
    birthday: date | None = None
    first_purchase: bool = False
    # points each capped rule has given this member in its current period
    cap_used: Mapping[int, int] = field(default_factory=dict)

    @property
    def local(self) -> datetime:
        return self.occurred_at.astimezone(self.zone)


@dataclass(frozen=True)
class Award:
    rule_id: int | None  # None: the program's own base rate
    rule: str
    kind: str
    points: int
    description: str


@dataclass(frozen=True)
class Earned:
    points: int
    awards: tuple[Award, ...]
    eligible_amount: int


def divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    if rounding == Rounding.DOWN:
        return numerator // denominator
    if rounding == Rounding.UP:
        return -(-numerator // denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def applies(rule: Rule, ctx: EarnContext) -> bool:
    if rule.starts_at is not None and ctx.occurred_at < rule.starts_at:
        return False
    if rule.ends_at is not None and ctx.occurred_at >= rule.ends_at:
        return False
    if rule.stores is not None and ctx.store_code not in rule.stores:
        return False
    return rule.tiers is None or ctx.tier_code in rule.tiers


def matches(line: PaidLine, params: Mapping[str, Any]) -> bool:
    return line.sku in params.get("skus", ()) or (
        line.category is not None and line.category in params.get("categories", ())
    )


def birthday_in(year: int, birthday: date) -> date:
    """The day a birthday is kept on in `year`: 29 February falls on 28 February in other years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):  # noqa: PLR2004
        return date(year, 2, 28)
    return birthday.replace(year=year)


def in_birthday_window(day: date, birthday: date, window: str) -> bool:
    kept = birthday_in(day.year, birthday)
    if window == "day":
        return day == kept
    if window == "week":  # the Monday-to-Sunday week the birthday falls in
        monday = kept - timedelta(days=kept.weekday())
        return monday <= day <= monday + timedelta(days=6)
    return day.month == kept.month  # "month"


def in_time_window(local: datetime, params: Mapping[str, Any]) -> bool:
    weekdays = params.get("weekdays")  # 0 = Monday ... 6 = Sunday, as datetime.weekday()
    if weekdays is not None and local.weekday() not in weekdays:
        return False
    start, end = params.get("from_time"), params.get("until_time")
    moment = local.time()
    if start is not None and moment < time.fromisoformat(start):
        return False
    return not (end is not None and moment >= time.fromisoformat(end))


def _extra(base_points: int, percent: int) -> int:
    """What a multiplier adds on top of `base_points`: (percent - 100) %, rounded down."""
    return base_points * (percent - 100) // 100


@dataclass(frozen=True)
class _Sale:
    """What bonus rules look at: the context and the result of the steps before them."""

    ctx: EarnContext
    eligible: list[PaidLine]
    rate: BaseRate
    base: int
    paid: int


_NOTHING = (0, "")


def _product(rule: Rule, sale: _Sale) -> tuple[int, str]:
    params = rule.params
    covered = [line for line in sale.eligible if matches(line, params)]
    if not covered:
        return _NOTHING
    if params.get("mode") == "multiply":
        percent = params["multiplier_percent"]
        points = _extra(sale.rate.points_for(sum(line.paid for line in covered)), percent)
        return points, f"x{percent / 100:g} on {len(covered)} line(s)"
    units = sum(line.quantity for line in covered)
    return units * params["points_per_unit"], f"{params['points_per_unit']} per unit x {units}"


def _promotion(rule: Rule, sale: _Sale) -> tuple[int, str]:
    params = rule.params
    if not in_time_window(sale.ctx.local, params):
        return _NOTHING
    if params.get("mode") == "multiply":
        percent = params["multiplier_percent"]
        return _extra(sale.base, percent), f"x{percent / 100:g} promotion"
    return params["points"], "promotion bonus"


def _visit(rule: Rule, sale: _Sale) -> tuple[int, str]:
    minimum = rule.params.get("min_basket", 0)
    if sale.paid < minimum:
        return _NOTHING
    return rule.params["points"], f"visit with a basket of at least {minimum}"


def _birthday(rule: Rule, sale: _Sale) -> tuple[int, str]:
    window = rule.params.get("window", "day")
    birthday = sale.ctx.birthday
    if birthday is None or not in_birthday_window(sale.ctx.local.date(), birthday, window):
        return _NOTHING
    return rule.params["points"], f"birthday ({window})"


def _first_purchase(rule: Rule, sale: _Sale) -> tuple[int, str]:
    return (rule.params["points"], "first purchase") if sale.ctx.first_purchase else _NOTHING


def _tier_multiplier(rule: Rule, sale: _Sale) -> tuple[int, str]:
    ctx = sale.ctx
    if ctx.tier_code is None:
        return _NOTHING
    percent = rule.params.get("percents", {}).get(ctx.tier_code, ctx.tier_multiplier_percent)
    return _extra(sale.base, percent), f"tier {ctx.tier_code} x{percent / 100:g}"


_BONUSES = {
    RuleKind.PRODUCT: _product,
    RuleKind.PROMOTION: _promotion,
    RuleKind.VISIT: _visit,
    RuleKind.BIRTHDAY: _birthday,
    RuleKind.FIRST_PURCHASE: _first_purchase,
    RuleKind.TIER_MULTIPLIER: _tier_multiplier,
}


def _capped(rule: Rule, points: int, ctx: EarnContext) -> int:
    if rule.cap_points is None:
        return points
    return max(0, min(points, rule.cap_points - ctx.cap_used.get(rule.id, 0)))


def evaluate(rules: Iterable[Rule], ctx: EarnContext) -> Earned:
    active = sorted((r for r in rules if applies(r, ctx)), key=lambda r: (r.priority, r.id))
    excluded = [r for r in active if r.kind == RuleKind.EXCLUSION]
    eligible = [line for line in ctx.lines if not any(matches(line, r.params) for r in excluded)]
    paid = sum(line.paid for line in eligible)

    spend = next((r for r in active if r.kind == RuleKind.SPEND), None)
    awards: list[Award] = []
    if spend is None:
        rate = ctx.default_rate
        base = rate.points_for(paid)
        if base:
            awards.append(
                Award(
                    None,
                    "base",
                    RuleKind.SPEND,
                    base,
                    f"{rate.points} point(s) per {rate.per_minor} minor units",
                )
            )
    else:
        rate = BaseRate(
            spend.params["points"],
            spend.params["per_minor"],
            Rounding(spend.params.get("rounding", Rounding.DOWN)),
        )
        base = _capped(spend, rate.points_for(paid), ctx)
        if base:
            awards.append(
                Award(
                    spend.id,
                    spend.name,
                    spend.kind,
                    base,
                    f"{rate.points} point(s) per {rate.per_minor} minor units",
                )
            )
    sale = _Sale(ctx, eligible, rate, base, paid)
    for rule in (r for r in active if r.kind in _BONUSES):
        points, why = _BONUSES[rule.kind](rule, sale)
        points = _capped(rule, points, ctx)
        if points <= 0:
            continue
        awards.append(Award(rule.id, rule.name, rule.kind, points, why))
        if not rule.stackable:
            break
    return Earned(sum(a.points for a in awards), tuple(awards), paid)


def signup_points(rules: Iterable[Rule], ctx: EarnContext) -> tuple[Award, ...]:
    """Sign-up bonuses, given at enrolment rather than at a sale."""
    active = sorted(
        (r for r in rules if applies(r, ctx) and r.kind == RuleKind.SIGNUP),
        key=lambda r: (r.priority, r.id),
    )
    awards = []
    for rule in active:
        points = _capped(rule, rule.params["points"], ctx)
        if points > 0:
            awards.append(Award(rule.id, rule.name, rule.kind, points, "welcome bonus"))
            if not rule.stackable:
                break
    return tuple(awards)


def period_start(period: CapPeriod, local: datetime) -> datetime | None:
    """Where a cap's current period began, in the program's zone (None: ever)."""
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == CapPeriod.DAY:
        return midnight
    if period == CapPeriod.MONTH:
        return midnight.replace(day=1)
    if period == CapPeriod.YEAR:
        return midnight.replace(month=1, day=1)
    return None
