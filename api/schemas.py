"""Request and response shapes of the till contract. Requests refuse unknown fields; integers
are strict (no "5", no 5.0) and bounded, so absurd input is a 422 with a reason."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

MAX_MINOR_UNITS = 10**10  # 100 million in a two-decimal currency: no till sells a line dearer
MAX_QUANTITY = 10_000
MAX_LINES = 500
MAX_POINTS = 10**9



def external_id_field() -> fields.String:
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, max=64), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={"description": "the till's own id: printable ASCII, no spaces"},
    )


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class BasketLineSchema(StrictSchema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    category = fields.String(load_default=None, validate=validate.Length(max=64), allow_none=True)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_price = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_MINOR_UNITS)
    )


class BasketSchema(StrictSchema):
    code = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=254),
        metadata={"description": "what the scanner read: QR payload, card number, phone, email"},
    )
    member_id = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    lines = fields.List(
        fields.Nested(BasketLineSchema), required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )
    coupon_codes = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list, validate=validate.Length(max=20),
    )
    redeem_points = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=MAX_POINTS)
    )


class SaleSchema(BasketSchema):
    external_id = external_id_field()
    occurred_at = fields.AwareDateTime(required=True)


class IdentifySchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=254))


class ReturnLineSchema(StrictSchema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )


class ReturnSchema(StrictSchema):
    external_id = external_id_field()
    lines = fields.List(
        fields.Nested(ReturnLineSchema), required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )


class EnrolSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    birthday = fields.Date(load_default=None, allow_none=True)
    email_consent = fields.Boolean(load_default=False)
    sms_consent = fields.Boolean(load_default=False)
    acquisition_source = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=80)
    )
    card_code = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=64),
        metadata={"description": "a pre-printed card handed over now; omit to issue a new one"},
    )


class BlockCardSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ReplaceCardSchema(BlockCardSchema):
    new_card_code = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=64)
    )


class LedgerQuerySchema(StrictSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class QrQuerySchema(StrictSchema):
    format = fields.String(load_default="svg", validate=validate.OneOf(["svg", "png"]))


# Responses


class PointsSchema(Schema):
    available = fields.Integer()
    pending = fields.Integer()


class CardSchema(Schema):
    number = fields.String()
    status = fields.String()
    qr_payload = fields.String(metadata={"description": "what the card's QR code holds"})
    activated_at = fields.AwareDateTime(allow_none=True)
    blocked_reason = fields.String(allow_none=True)


class MemberSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    birthday = fields.Date(allow_none=True)
    consents = fields.Dict()
    acquisition_source = fields.String(allow_none=True)
    status = fields.String()
    created_at = fields.AwareDateTime()
    points = fields.Nested(PointsSchema)
    cards = fields.List(fields.Nested(CardSchema))


class IdentifiedSchema(Schema):
    member = fields.Dict(metadata={"description": "id, name, status"})
    card = fields.Nested(CardSchema, allow_none=True)
    tier = fields.Dict(allow_none=True)
    points = fields.Nested(PointsSchema)
    coupons = fields.List(fields.Dict())


class EarnReasonSchema(Schema):
    rule = fields.String()
    points = fields.Integer()
    description = fields.String()


class PointsOutcomeSchema(Schema):
    earned = fields.Integer()
    redeemed = fields.Integer()
    reasons = fields.List(fields.Nested(EarnReasonSchema))


class QuoteResultSchema(Schema):
    member_id = fields.Integer(allow_none=True)
    currency = fields.String()
    subtotal = fields.Integer()
    discounts = fields.List(fields.Dict())
    discount_total = fields.Integer()
    total = fields.Integer()
    points = fields.Nested(PointsOutcomeSchema)
    coupons = fields.List(fields.Dict())
    balance_after = fields.Integer()


class SaleResultSchema(QuoteResultSchema):
    external_id = fields.String()
    status = fields.String()
    balance = fields.Nested(PointsSchema, allow_none=True)
    tier = fields.Dict(allow_none=True)
    tier_changed = fields.Boolean()


class ReturnResultSchema(Schema):
    external_id = fields.String()
    sale_external_id = fields.String()
    sale_status = fields.String()
    points_reversed = fields.Integer()
    points_restored = fields.Integer()
    balance = fields.Nested(PointsSchema, allow_none=True)


class LedgerEntrySchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    pending_points = fields.Integer()
    reason = fields.String()
    created_at = fields.AwareDateTime()


class LedgerPageSchema(Schema):
    entries = fields.List(fields.Nested(LedgerEntrySchema))
    next_cursor = fields.Integer(allow_none=True)


class ProgramSchema(Schema):
    name = fields.String()
    currency = fields.String()
    timezone = fields.String()
    earn_points = fields.Integer()
    earn_per_minor = fields.Integer()
    redeem_points = fields.Integer()
    redeem_value_minor = fields.Integer()
    pending_days = fields.Integer()
    expiry_policy = fields.String()
    expiry_months = fields.Integer()
