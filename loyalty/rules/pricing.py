"""Pricing a basket: subtotal, the points discount spread over the lines, what each line was
paid. Points to earn come from the rules engine (loyalty/rules/engine.py) over the paid lines.

Pure functions over plain data, so the till's quote, the committed sale and returns all price
the same way, and tests need no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loyalty.errors import InvalidInput
from loyalty.program import ProgramSettings
from loyalty.rules.engine import BaseRate, PaidLine


@dataclass(frozen=True)
class BasketLine:
    sku: str
    quantity: int
    unit_price: int
    category: str | None = None

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class PricedBasket:
    subtotal: int
    points_redeemed: int
    points_discount: int
    line_discounts: list[int]
    total: int
    paid_lines: tuple[PaidLine, ...]
    coupon_discount: int = 0
    points_shares: list[int] | None = None  # the points' part of line_discounts


def points_value(program: ProgramSettings, points: int) -> int:
    """What redeemed points take off a basket, in minor units, rounded down."""
    return points * program.redeem_value_minor // program.redeem_points


def default_rate(program: ProgramSettings) -> BaseRate:
    """The program's own earn rate, for sales that no spend rule covers."""
    return BaseRate(points=program.earn_points, per_minor=program.earn_per_minor)


def spread(amount: int, weights: list[int]) -> list[int]:
    """Split `amount` over lines in proportion to `weights` (largest remainder), so the shares
    are whole minor units and add up exactly to `amount`."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    remainders = sorted(
        range(len(weights)), key=lambda i: (amount * weights[i] % total, -i), reverse=True
    )
    for i in remainders[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def price_basket(
    program: ProgramSettings,
    lines: list[BasketLine],
    redeem_points: int,
    coupon_discounts: Sequence[int] | None = None,
) -> PricedBasket:
    """The basket's price: coupons first (`coupon_discounts`, one per line, from
    loyalty.coupons.discounts), then the redeemed points on what the lines still cost."""
    if not lines:
        raise InvalidInput("a basket needs at least one line", field="lines")
    if redeem_points < 0:
        raise InvalidInput("points to redeem cannot be negative", field="redeem_points")
    amounts = [line.amount for line in lines]
    subtotal = sum(amounts)
    coupons = list(coupon_discounts) if coupon_discounts else [0] * len(lines)
    remaining = [amount - taken for amount, taken in zip(amounts, coupons, strict=True)]
    discount = points_value(program, redeem_points)
    if discount > sum(remaining):
        after = " after its coupons" if any(coupons) else ""
        raise InvalidInput(
            f"{redeem_points} points are worth {discount}, more than the basket's "
            f"{sum(remaining)}{after}",
            field="redeem_points",
        )
    if redeem_points and discount == 0:
        raise InvalidInput(
            f"{redeem_points} points are worth nothing: redeem at least "
            f"{program.redeem_points} points",
            field="redeem_points",
        )
    points_shares = spread(discount, remaining)
    paid = tuple(
        PaidLine(line.sku, line.category, line.quantity, left - share)
        for line, left, share in zip(lines, remaining, points_shares, strict=True)
    )
    return PricedBasket(
        subtotal=subtotal,
        points_redeemed=redeem_points,
        points_discount=discount,
        line_discounts=[c + p for c, p in zip(coupons, points_shares, strict=True)],
        total=subtotal - discount - sum(coupons),
        paid_lines=paid,
        coupon_discount=sum(coupons),
        points_shares=points_shares,
    )


def points_kept_after_returns(earned: int, paid: int, paid_still_kept: int) -> int:
    """What a sale keeps of its earned points once some goods came back: in proportion to what
    the member still paid for, rounded down. Taken from the sale's own figures, not today's
    rules, so a later change of the program never alters what a return takes back; the
    reversals of partial returns add up to the full return and never exceed what was earned."""
    if paid <= 0:
        return 0
    return earned * paid_still_kept // paid
