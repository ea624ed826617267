"""Pricing a basket: subtotal, points discount spread over the lines, points to earn and why.

Pure functions over plain data, so the till's quote, the committed sale and returns all price
the same way, and tests need no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loyalty.errors import InvalidInput
from loyalty.program import ProgramSettings


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
class EarnReason:
    rule: str
    points: int
    description: str


@dataclass(frozen=True)
class PricedBasket:
    subtotal: int
    points_redeemed: int
    points_discount: int
    line_discounts: list[int]
    total: int
    points_earned: int
    earn_reasons: list[EarnReason] = field(default_factory=list)


def points_value(program: ProgramSettings, points: int) -> int:
    """What redeemed points take off a basket, in minor units, rounded down."""
    return points * program.redeem_value_minor // program.redeem_points


def points_for_spend(program: ProgramSettings, eligible: int) -> int:
    """Points for eligible spend, rounded down once per transaction."""
    return max(eligible, 0) * program.earn_points // program.earn_per_minor


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
    program: ProgramSettings, lines: list[BasketLine], redeem_points: int
) -> PricedBasket:
    if not lines:
        raise InvalidInput("a basket needs at least one line", field="lines")
    if redeem_points < 0:
        raise InvalidInput("points to redeem cannot be negative", field="redeem_points")
    amounts = [line.amount for line in lines]
    subtotal = sum(amounts)
    discount = points_value(program, redeem_points)
    if discount > subtotal:
        raise InvalidInput(
            f"{redeem_points} points are worth {discount}, more than the basket's {subtotal}",
            field="redeem_points",
        )
    if redeem_points and discount == 0:
        raise InvalidInput(
            f"{redeem_points} points are worth nothing: redeem at least "
            f"{program.redeem_points} points",
            field="redeem_points",
        )
    line_discounts = spread(discount, amounts)
    total = subtotal - discount
    earned = points_for_spend(program, total)
    reasons = []
    if earned:
        reasons.append(
            EarnReason(
                rule="base",
                points=earned,
                description=(
                    f"{program.earn_points} point(s) per {program.earn_per_minor} "
                    f"{program.currency} minor units spent"
                ),
            )
        )
    return PricedBasket(
        subtotal=subtotal,
        points_redeemed=redeem_points,
        points_discount=discount,
        line_discounts=line_discounts,
        total=total,
        points_earned=earned,
        earn_reasons=reasons,
    )


def points_kept_after_returns(earned: int, paid: int, paid_still_kept: int) -> int:
    """What a sale keeps of its earned points once some goods came back: in proportion to what
    the member still paid for, rounded down. Taken from the sale's own figures, not today's
    rules, so a later change of the program never alters what a return takes back; the
    reversals of partial returns add up to the full return and never exceed what was earned."""
    if paid <= 0:
        return 0
    return earned * paid_still_kept // paid
