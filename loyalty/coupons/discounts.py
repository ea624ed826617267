"""What a till basket's coupons take off, line by line: pure functions, no database.

Order: coupons are applied by kind, and in the order given within a kind:

1. fixed_price, 2. free_units, 3. percent_off, 4. amount_off

each on what the lines still cost after the earlier ones. extra_points and points_multiplier
take no money; they only carry their value to the points step. Redeemed points (priced in
loyalty/rules/pricing.py) come after all coupons, on what remains.

Rules: no line ever goes below zero (a coupon that would take more takes what is left);
percentages are rounded down per line, and a cap is spread over the lines in proportion to
their discounts; amount_off is spread in proportion to what the lines still cost; the
"cheapest" target is one unit of the matching line with the lowest unit price (ties: the first
line), worth min(unit price, what its line still costs); free_units makes the cheapest units
free (ties: later lines first). Points multipliers do not compound: the highest one applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from loyalty.errors import InvalidInput
from loyalty.rules.pricing import BasketLine, spread


class DiscountKind(StrEnum):
    PERCENT_OFF = "percent_off"  # value: percent 1..100, cap: optional max discount (minor)
    AMOUNT_OFF = "amount_off"  # value: minor units
    FIXED_PRICE = "fixed_price"  # value: the price per unit in minor units for matching items
    FREE_UNITS = "free_units"  # of every X+Y matching units the Y cheapest are free
    EXTRA_POINTS = "extra_points"  # value: points added to what the sale earns
    POINTS_MULTIPLIER = "points_multiplier"  # value: percent, 200 = double points


class Target(StrEnum):
    BASKET = "basket"  # every line
    ITEMS = "items"  # lines whose sku is in skus or category in categories
    CHEAPEST = "cheapest"  # one unit of the cheapest matching line (every line if no filter)


@dataclass(frozen=True)
class Benefit:
    kind: DiscountKind
    value: int = 0
    cap: int | None = None  # percent_off only
    target: Target = Target.BASKET
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    buy_quantity: int = 0
    free_quantity: int = 0


@dataclass(frozen=True)
class CouponDiscount:
    code: str
    line_discounts: tuple[int, ...]  # one per basket line, minor units
    extra_points: int = 0
    multiplier_percent: int = 100  # 100 = no change

    @property
    def amount(self) -> int:
        return sum(self.line_discounts)


@dataclass(frozen=True)
class PricedCoupons:
    coupons: tuple[CouponDiscount, ...]  # in the order given
    line_discounts: tuple[int, ...]  # all coupons together, per line
    remaining: tuple[int, ...]  # what each line still costs after the coupons

    @property
    def total(self) -> int:
        return sum(self.line_discounts)


_ORDER = {
    DiscountKind.FIXED_PRICE: 0,
    DiscountKind.FREE_UNITS: 1,
    DiscountKind.PERCENT_OFF: 2,
    DiscountKind.AMOUNT_OFF: 3,
    DiscountKind.EXTRA_POINTS: 4,
    DiscountKind.POINTS_MULTIPLIER: 4,
}


def validate_benefit(benefit: Benefit) -> None:
    """Raise InvalidInput, naming the field, for a benefit that cannot be priced."""
    kind = benefit.kind
    if benefit.value < 0:
        raise InvalidInput("a coupon's value cannot be negative", field="value")
    if benefit.cap is not None and benefit.cap < 0:
        raise InvalidInput("a coupon's cap cannot be negative", field="cap")
    if kind is DiscountKind.PERCENT_OFF and not 1 <= benefit.value <= 100:  # noqa: PLR2004
        raise InvalidInput("a percentage must be between 1 and 100", field="value")
    if kind is DiscountKind.POINTS_MULTIPLIER and benefit.value < 100:  # noqa: PLR2004
        raise InvalidInput("a points multiplier is at least 100 (percent)", field="value")
    if kind is DiscountKind.FREE_UNITS:
        if benefit.buy_quantity < 1:
            raise InvalidInput("free units need a buy quantity of 1 or more", field="buy_quantity")
        if benefit.free_quantity < 1:
            raise InvalidInput(
                "free units need a free quantity of 1 or more", field="free_quantity"
            )
        if benefit.target is Target.CHEAPEST:
            raise InvalidInput("free units apply to items or the basket", field="target")
    if benefit.target is Target.ITEMS and not (benefit.skus or benefit.categories):
        raise InvalidInput("a coupon on items needs skus or categories", field="target")


def _matches(benefit: Benefit, line: BasketLine) -> bool:
    if benefit.target is Target.BASKET or not (benefit.skus or benefit.categories):
        return True
    return line.sku in benefit.skus or (
        line.category is not None and line.category in benefit.categories
    )


def _discounts(benefit: Benefit, lines: Sequence[BasketLine], remaining: list[int]) -> list[int]:
    """One coupon's discount per line, each at most what the line still costs."""
    eligible = [i for i, line in enumerate(lines) if line.quantity > 0 and _matches(benefit, line)]
    if benefit.kind in {DiscountKind.EXTRA_POINTS, DiscountKind.POINTS_MULTIPLIER} or not eligible:
        return [0] * len(lines)
    if benefit.target is Target.CHEAPEST:
        return _on_cheapest_unit(benefit, lines, remaining, eligible)
    return _on_lines(benefit, lines, remaining, eligible)


def _on_cheapest_unit(
    benefit: Benefit, lines: Sequence[BasketLine], remaining: list[int], eligible: list[int]
) -> list[int]:
    out = [0] * len(lines)
    i = min(eligible, key=lambda j: (lines[j].unit_price, j))
    unit = min(lines[i].unit_price, remaining[i])
    if benefit.kind is DiscountKind.PERCENT_OFF:
        out[i] = unit * benefit.value // 100
        if benefit.cap is not None:
            out[i] = min(out[i], benefit.cap)
    elif benefit.kind is DiscountKind.AMOUNT_OFF:
        out[i] = min(benefit.value, unit)
    else:  # FIXED_PRICE (free units on "cheapest" are refused by validate_benefit)
        out[i] = min(max(0, lines[i].unit_price - benefit.value), unit)
    return out


def _on_lines(
    benefit: Benefit, lines: Sequence[BasketLine], remaining: list[int], eligible: list[int]
) -> list[int]:
    out = [0] * len(lines)
    value = benefit.value
    if benefit.kind is DiscountKind.FIXED_PRICE:
        for i in eligible:
            out[i] = min(lines[i].quantity * max(0, lines[i].unit_price - value), remaining[i])
    elif benefit.kind is DiscountKind.FREE_UNITS:
        group = benefit.buy_quantity + benefit.free_quantity
        free = sum(lines[i].quantity for i in eligible) // group * benefit.free_quantity
        for i in sorted(eligible, key=lambda j: (lines[j].unit_price, -j)):
            units = min(lines[i].quantity, free)
            out[i] = min(units * lines[i].unit_price, remaining[i])
            free -= units
    elif benefit.kind is DiscountKind.PERCENT_OFF:
        for i in eligible:
            out[i] = remaining[i] * value // 100
        if benefit.cap is not None and sum(out) > benefit.cap:
            out = spread(benefit.cap, out)
    else:  # AMOUNT_OFF
        for i in eligible:
            out[i] = remaining[i]  # the weights: what each eligible line still costs
        out = spread(min(value, sum(out)), out)
    return out


def price_coupons(
    lines: Sequence[BasketLine], coupons: Sequence[tuple[str, Benefit]]
) -> PricedCoupons:
    """Price `coupons` (code, benefit) on `lines` in the documented order of kinds."""
    for line in lines:
        if line.quantity < 0 or line.unit_price < 0:
            raise InvalidInput("a line's quantity and price cannot be negative", field="lines")
    for _, benefit in coupons:
        validate_benefit(benefit)
    remaining = [line.amount for line in lines]
    priced: dict[int, CouponDiscount] = {}
    for n in sorted(range(len(coupons)), key=lambda k: _ORDER[coupons[k][1].kind]):
        code, benefit = coupons[n]
        taken = _discounts(benefit, lines, remaining)
        remaining = [left - d for left, d in zip(remaining, taken, strict=True)]
        priced[n] = CouponDiscount(
            code=code,
            line_discounts=tuple(taken),
            extra_points=benefit.value if benefit.kind is DiscountKind.EXTRA_POINTS else 0,
            multiplier_percent=(
                benefit.value if benefit.kind is DiscountKind.POINTS_MULTIPLIER else 100
            ),
        )
    return PricedCoupons(
        coupons=tuple(priced[n] for n in range(len(coupons))),
        line_discounts=tuple(
            line.amount - left for line, left in zip(lines, remaining, strict=True)
        ),
        remaining=tuple(remaining),
    )


def combined_multiplier(coupons: Sequence[CouponDiscount]) -> int:
    """The highest points multiplier among the coupons (percent, 100 = none); they do not
    compound, so 200 and 150 make 200, not 300."""
    return max((c.multiplier_percent for c in coupons), default=100)


def extra_points(coupons: Sequence[CouponDiscount]) -> int:
    """The points the coupons add to what the sale earns."""
    return sum(c.extra_points for c in coupons)
