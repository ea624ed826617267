"""The sale being rung up, kept in the signed cookie session beside who is signed in: the
member's id and the code scanned, the basket's lines, coupon codes and points to redeem, and
the external id the sale will be recorded under. Ids, codes and small numbers only; the
member, the prices and the points are read again from the database on every page.

The external id is chosen when the basket starts, not when it is committed, so a second
submit of the same basket (a double click, a reload) meets the sale already recorded instead
of recording it twice."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from flask import session

from loyalty.checkout.identify import CouponScan, Identification
from loyalty.checkout.services import Basket
from loyalty.rules.pricing import BasketLine

KEY = "till_sale"
MAX_LINES = 50
MAX_COUPONS = 5


@dataclass(frozen=True)
class TillSale:
    member_id: int | None = None
    code: str | None = None
    lines: tuple[BasketLine, ...] = ()
    coupon_codes: tuple[str, ...] = ()
    redeem_points: int = 0
    external_id: str = field(default_factory=lambda: f"web-{uuid.uuid4().hex}")

    @property
    def empty(self) -> bool:
        return not self.lines

    def basket(self) -> Basket:
        return Basket(
            lines=list(self.lines),
            member_code=self.code,
            member_id=self.member_id if self.code is None else None,
            coupon_codes=list(self.coupon_codes),
            redeem_points=self.redeem_points,
        )


def _lines(stored: Any) -> tuple[BasketLine, ...]:
    if not isinstance(stored, list):
        return ()
    return tuple(
        BasketLine(str(sku), int(quantity), int(price))
        for sku, quantity, price in stored[:MAX_LINES]
    )


def current() -> TillSale:
    stored = session.get(KEY)
    if not isinstance(stored, dict):
        return TillSale()
    member_id = stored.get("member")
    return TillSale(
        member_id=member_id if isinstance(member_id, int) else None,
        code=stored.get("code") or None,
        lines=_lines(stored.get("lines")),
        coupon_codes=tuple(str(code) for code in stored.get("coupons", ())[:MAX_COUPONS]),
        redeem_points=int(stored.get("redeem", 0)),
        external_id=str(stored.get("sale") or TillSale().external_id),
    )


def save(sale: TillSale) -> None:
    session[KEY] = {
        "member": sale.member_id,
        "code": sale.code,
        "lines": [[line.sku, line.quantity, line.unit_price] for line in sale.lines],
        "coupons": list(sale.coupon_codes),
        "redeem": sale.redeem_points,
        "sale": sale.external_id,
    }


def clear() -> None:
    """A new customer: nothing of the sale before survives, and a new external id."""
    session.pop(KEY, None)


def scanned(sale: TillSale, found: Identification | CouponScan, code: str) -> TillSale:
    """The sale once a code was scanned: a member's code (or their own coupon's) names the
    buyer, kept with the basket rung up so far; a coupon for anyone joins the coupon codes."""
    if isinstance(found, CouponScan):
        return with_coupon(sale, found.scanned_coupon.code)
    return replace(sale, member_id=found.member_id, code=code)


def with_line(sale: TillSale, line: BasketLine) -> TillSale:
    return replace(sale, lines=(*sale.lines, line)[:MAX_LINES])


def without_line(sale: TillSale, index: int) -> TillSale:
    return replace(sale, lines=tuple(line for n, line in enumerate(sale.lines) if n != index))


def with_coupon(sale: TillSale, code: str) -> TillSale:
    if code.upper() in (known.upper() for known in sale.coupon_codes):
        return sale
    return replace(sale, coupon_codes=(*sale.coupon_codes, code)[:MAX_COUPONS])


def without_coupon(sale: TillSale, index: int) -> TillSale:
    codes = tuple(code for n, code in enumerate(sale.coupon_codes) if n != index)
    return replace(sale, coupon_codes=codes)
