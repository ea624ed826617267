"""What the till's calls answer, as typed values. A sale, a return and a void keep their first
result with them (JSON in the database, loyalty/results.py), and a replay answers exactly that
result again (tests compare the two answers byte for byte)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loyalty.ledger.services import Balance
from loyalty.rules.engine import Award
from loyalty.tiers.models import TierView


@dataclass(frozen=True)
class LineDiscount:
    """What one discount took off one basket line (lines count from 1)."""

    line: int
    sku: str
    kind: str  # "coupon" (with its code), or "points": redeemed points spread over the lines
    amount: int
    code: str | None = None


@dataclass(frozen=True)
class PointsOutcome:
    """What a basket earns and spends; `reasons` say which rule gave how many points."""

    earned: int
    redeemed: int
    reasons: tuple[Award, ...]


@dataclass(frozen=True)
class CouponOutcome:
    """One code the till sent: applied (with what it took off and the points it added), or
    not, with a machine-readable reason and a message for the cashier."""

    code: str
    applied: bool
    reason: str | None = None  # machine-readable, when not applied
    message: str | None = None
    offer_id: int | None = None
    amount: int = 0
    points: int = 0


@dataclass(frozen=True)
class Quote:
    """A priced basket. `balance` is the member's balance once the sale is committed."""

    member_id: int | None
    currency: str
    subtotal: int
    discounts: tuple[LineDiscount, ...]
    discount_total: int
    total: int
    points: PointsOutcome
    coupons: tuple[CouponOutcome, ...]
    balance: Balance | None
    tier: TierView | None


@dataclass(frozen=True)
class SaleResult(Quote):
    external_id: str
    status: str
    tier_changed: bool
    # coupons this sale earned for the member's next visit (their codes)
    next_visit_coupons: tuple[str, ...] = ()


@dataclass(frozen=True)
class VoidResult:
    sale_external_id: str
    sale_status: str
    points_reversed: int
    points_restored: int
    balance: Balance | None
    # coupons the sale used that can be used again (a full return or a void)
    coupons_returned: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class ReturnResult(VoidResult):
    external_id: str
