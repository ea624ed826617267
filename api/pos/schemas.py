"""The till contract's shapes (DESIGN.md, "The till contract")."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from api.coupons.schemas import WalletCouponSchema
from api.fields import (
    EARLIEST_SALE,
    LATEST_SALE,
    MAX_LINES,
    MAX_MINOR_UNITS,
    MAX_POINTS,
    MAX_QUANTITY,
    StrictSchema,
    Text,
    external_id_field,
)
from api.ledger.schemas import BalanceSchema
from api.tiers.schemas import TierSchema
from loyalty.checkout.returns import ReturnRequest
from loyalty.checkout.services import Basket, SaleRequest
from loyalty.db import MAX_ID
from loyalty.rules.pricing import BasketLine


class BasketLineSchema(StrictSchema):
    sku = Text(required=True, validate=validate.Length(min=1, max=64))
    category = Text(load_default=None, validate=validate.Length(max=64), allow_none=True)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_price = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_MINOR_UNITS),
        metadata={"description": "minor units"},
    )

    @post_load
    def _line(self, data: dict[str, Any], **_: object) -> BasketLine:
        return BasketLine(**data)


class _BasketFields(StrictSchema):
    code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=254),
        metadata={"description": "what the scanner read: QR payload, card number, phone, email"},
    )
    member_id = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=MAX_ID)
    )
    lines = fields.List(
        fields.Nested(BasketLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )
    coupon_codes = fields.List(
        Text(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=20),
    )
    redeem_points = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=MAX_POINTS)
    )


def _basket(data: dict[str, Any]) -> Basket:
    return Basket(
        lines=data["lines"],
        member_code=data["code"],
        member_id=data["member_id"],
        coupon_codes=data["coupon_codes"],
        redeem_points=data["redeem_points"],
    )


class BasketSchema(_BasketFields):
    @post_load
    def _basket(self, data: dict[str, Any], **_: object) -> Basket:
        return _basket(data)


class SaleSchema(_BasketFields):
    external_id = external_id_field()
    occurred_at = fields.AwareDateTime(
        required=True, validate=validate.Range(min=EARLIEST_SALE, max=LATEST_SALE)
    )
    payment_fingerprint = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=128),
        metadata={
            "description": "the POS's token for the payment card (never the card number): a "
            "referral paid with the referrer's own card is refused"
        },
    )

    @post_load
    def _sale(self, data: dict[str, Any], **_: object) -> SaleRequest:
        return SaleRequest(
            data["external_id"],
            data["occurred_at"],
            _basket(data),
            payment_fingerprint=data["payment_fingerprint"],
        )


class IdentifySchema(StrictSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=254))


class ReturnLineSchema(StrictSchema):
    sku = Text(required=True, validate=validate.Length(min=1, max=64))
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )


class ReturnSchema(StrictSchema):
    external_id = external_id_field()
    lines = fields.List(
        fields.Nested(ReturnLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )

    @post_load
    def _request(self, data: dict[str, Any], **_: object) -> ReturnRequest:
        return ReturnRequest(
            data["external_id"], [(line["sku"], line["quantity"]) for line in data["lines"]]
        )


# Responses


class MemberRefSchema(Schema):
    """The member as a cashier sees them."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    email = fields.String(
        required=True, allow_none=True, metadata={"description": "masked: a**@example.com"}
    )
    phone = fields.String(
        required=True, allow_none=True, metadata={"description": "masked: +44*******018"}
    )


class CardRefSchema(Schema):
    """The card scanned, as a cashier sees it."""

    number = fields.String(required=True, metadata={"description": "masked: **** **** **** 0018"})
    status = fields.String(required=True)


class IdentifiedSchema(Schema):
    """The member and the coupons they can use now. When the code scanned is a coupon's, it is
    `scanned_coupon`: a member's coupon identifies its owner; a coupon for anyone answers with
    `member`, `card`, `tier` and `balance` null."""

    member = fields.Nested(MemberRefSchema, required=True, allow_none=True)
    card = fields.Nested(CardRefSchema, required=True, allow_none=True)
    tier = fields.Nested(TierSchema, required=True, allow_none=True)
    balance = fields.Nested(BalanceSchema, required=True, allow_none=True)
    coupons = fields.List(fields.Nested(WalletCouponSchema), required=True)
    scanned_coupon = fields.Nested(WalletCouponSchema, required=True, allow_none=True)


class EarnReasonSchema(Schema):
    rule = fields.String(
        required=True, metadata={"description": "the rule's name; `base` for the program's rate"}
    )
    rule_id = fields.Integer(required=True, allow_none=True)
    kind = fields.String(required=True)
    points = fields.Integer(required=True)
    description = fields.String(required=True)


class PointsOutcomeSchema(Schema):
    earned = fields.Integer(required=True)
    redeemed = fields.Integer(required=True)
    reasons = fields.List(fields.Nested(EarnReasonSchema), required=True)


class LineDiscountSchema(Schema):
    line = fields.Integer(required=True, metadata={"description": "the basket line, from 1"})
    sku = fields.String(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "`coupon` (see `code`), or `points`: redeemed points"},
    )
    amount = fields.Integer(required=True, metadata={"description": "minor units off the line"})
    code = fields.String(required=True, allow_none=True, metadata={"description": "the coupon"})


class CouponOutcomeSchema(Schema):
    code = fields.String(required=True)
    applied = fields.Boolean(required=True)
    reason = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "why not applied: unknown, not_this_member, not_started, expired, "
            "not_in_store, tier, min_basket, used_up, budget_exhausted, member_limit, "
            "not_combinable"
        },
    )
    message = fields.String(required=True, allow_none=True)
    offer_id = fields.Integer(required=True, allow_none=True)
    amount = fields.Integer(required=True, metadata={"description": "minor units it took off"})
    points = fields.Integer(required=True, metadata={"description": "points it added"})


class QuoteSchema(Schema):
    member_id = fields.Integer(required=True, allow_none=True)
    currency = fields.String(required=True)
    subtotal = fields.Integer(required=True)
    discounts = fields.List(fields.Nested(LineDiscountSchema), required=True)
    discount_total = fields.Integer(required=True)
    total = fields.Integer(required=True)
    points = fields.Nested(PointsOutcomeSchema, required=True)
    coupons = fields.List(fields.Nested(CouponOutcomeSchema), required=True)
    balance = fields.Nested(
        BalanceSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the member's balance once this sale is committed"},
    )
    tier = fields.Nested(TierSchema, required=True, allow_none=True)


class SaleResultSchema(QuoteSchema):
    external_id = fields.String(required=True)
    status = fields.String(required=True)
    tier_changed = fields.Boolean(required=True)
    next_visit_coupons = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "coupons this sale earned for the next visit (codes)"},
    )


class VoidResultSchema(Schema):
    sale_external_id = fields.String(required=True)
    sale_status = fields.String(required=True)
    points_reversed = fields.Integer(required=True)
    points_restored = fields.Integer(required=True)
    balance = fields.Nested(BalanceSchema, required=True, allow_none=True)
    coupons_returned = fields.Integer(
        required=True, metadata={"description": "coupons the sale used that work again"}
    )


class ReturnResultSchema(VoidResultSchema):
    external_id = fields.String(required=True)


class SaleLineViewSchema(Schema):
    line = fields.Integer(required=True)
    sku = fields.String(required=True)
    category = fields.String(required=True, allow_none=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Integer(required=True)
    discount = fields.Integer(required=True)
    returned_quantity = fields.Integer(required=True)


class ReturnRefSchema(Schema):
    external_id = fields.String(required=True)
    points_reversed = fields.Integer(required=True)
    points_restored = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)


class SaleViewSchema(Schema):
    """A sale as it stands now (returns included), for a receipt look-up."""

    external_id = fields.String(required=True)
    store_id = fields.Integer(required=True)
    status = fields.String(required=True)
    member_id = fields.Integer(required=True, allow_none=True)
    occurred_at = fields.AwareDateTime(required=True)
    recorded_at = fields.AwareDateTime(required=True)
    currency = fields.String(required=True)
    subtotal = fields.Integer(required=True)
    discount_total = fields.Integer(required=True)
    total = fields.Integer(required=True)
    points_earned = fields.Integer(required=True)
    points_redeemed = fields.Integer(required=True)
    points_reversed = fields.Integer(required=True)
    lines = fields.List(fields.Nested(SaleLineViewSchema), required=True)
    returns = fields.List(fields.Nested(ReturnRefSchema), required=True)
