"""Request and response shapes of the till contract. Requests refuse unknown fields; integers
and booleans are strict (no "5", no 5.0, no "yes") and bounded, and text holds no control
characters, so absurd input is a 422 with a reason and never reaches the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates

from loyalty.idempotency import CLIENT_ID
from loyalty.ledger.adjustments import MAX_ADJUSTMENT

CLIENT_ID_ERROR = "Printable ASCII without spaces."

MAX_MINOR_UNITS = 10**10  # 100 million in a two-decimal currency: no till sells a line dearer
MAX_QUANTITY = 10_000
MAX_LINES = 500
MAX_POINTS = 10**9
MAX_ID = 2**63 - 1  # a BIGINT primary key; beyond it a database refuses even to compare
# A till's clock set to 1970 or to the year 9999 is a mistake; 9999 with a negative offset
# cannot even be expressed in UTC.
EARLIEST_SALE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_SALE = datetime(9999, 1, 1, tzinfo=UTC)

# NUL and lone surrogates cannot be stored (PostgreSQL refuses NUL, neither database takes a
# surrogate that is not UTF-8); the other C0 controls are never meant. Tab and line breaks are
# allowed: a scanner in keyboard-wedge mode ends a code with one.
_FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class Text(fields.String):
    """A string that a database can store: no NUL, no other control characters but tab and
    line breaks, no lone surrogates."""

    default_error_messages = {  # noqa: RUF012 - marshmallow merges this class attribute
        "characters": "Contains a control character or an invalid code point.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _FORBIDDEN_CHARACTERS.search(text):
            raise self.make_error("characters")
        return text


class StrictBoolean(fields.Boolean):
    """JSON `true` or `false` only: a consent is never inferred from "yes", "on" or 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True and value is not False:
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def external_id_field() -> fields.String:
    return Text(
        required=True,
        validate=[
            validate.Length(min=1, max=64),
            validate.Regexp(CLIENT_ID, error=CLIENT_ID_ERROR),
        ],
        metadata={"description": "the till's own id: printable ASCII, no spaces"},
    )


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class BasketLineSchema(StrictSchema):
    sku = Text(required=True, validate=validate.Length(min=1, max=64))
    category = Text(load_default=None, validate=validate.Length(max=64), allow_none=True)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_price = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_MINOR_UNITS)
    )


class BasketSchema(StrictSchema):
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


class SaleSchema(BasketSchema):
    external_id = external_id_field()
    occurred_at = fields.AwareDateTime(
        required=True, validate=validate.Range(min=EARLIEST_SALE, max=LATEST_SALE)
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


class EnrolSchema(StrictSchema):
    name = Text(
        required=True,
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(r"\s*\S", error="A name needs more than blanks."),
        ],
    )
    email = Text(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = Text(load_default=None, allow_none=True, validate=validate.Length(max=32))
    birthday = fields.Date(load_default=None, allow_none=True)
    email_consent = StrictBoolean(load_default=False)
    sms_consent = StrictBoolean(load_default=False)
    acquisition_source = Text(load_default=None, allow_none=True, validate=validate.Length(max=80))
    card_code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "a pre-printed card handed over now; omit to issue a new one"},
    )


class BlockCardSchema(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=200))


class ReplaceCardSchema(BlockCardSchema):
    new_card_code = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))


class LedgerQuerySchema(StrictSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


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


class TierSchema(Schema):
    code = fields.String()
    name = fields.String()
    rank = fields.Integer()
    earn_multiplier_percent = fields.Integer()


class IdentifiedSchema(Schema):
    member = fields.Dict(metadata={"description": "id, name, status"})
    card = fields.Nested(CardSchema, allow_none=True)
    tier = fields.Nested(TierSchema, allow_none=True)
    points = fields.Nested(PointsSchema)
    coupons = fields.List(fields.Dict())


class EarnReasonSchema(Schema):
    rule = fields.String(metadata={"description": "the rule's name; `base` for the program's rate"})
    rule_id = fields.Integer(allow_none=True)
    kind = fields.String()
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
    tier = fields.Nested(TierSchema, allow_none=True)


class SaleResultSchema(QuoteResultSchema):
    external_id = fields.String()
    status = fields.String()
    balance = fields.Nested(PointsSchema, allow_none=True)
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


class ProgramChangeSchema(StrictSchema):
    name = Text(validate=validate.Length(min=1, max=120))
    timezone = Text(validate=validate.Length(min=1, max=64))
    earn_points = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))
    earn_per_minor = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    redeem_points = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    redeem_value_minor = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    pending_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    expiry_policy = fields.String(
        validate=validate.OneOf(
            ["months_after_earning", "months_after_earning_month", "end_of_year", "never"]
        )
    )
    expiry_months = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))
    reminder_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    tier_basis = fields.String(validate=validate.OneOf(["spend", "points"]))
    tier_window_months = fields.Integer(strict=True, validate=validate.Range(min=1, max=60))
    tier_grace_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))

    @validates("timezone")
    def _known_zone(self, value: str, **_: object) -> None:
        if value not in available_timezones():
            raise ValidationError("not an IANA time zone, e.g. Europe/London")


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
    reminder_days = fields.Integer()
    tier_basis = fields.String()
    tier_window_months = fields.Integer()
    tier_grace_days = fields.Integer()


class ActivateCardSchema(StrictSchema):
    card_code = Text(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the pre-printed card's QR payload or number"},
    )


# Staff: manual point adjustments and the liability report

_MONTH_PATTERN = r"^\d{4}-\d{2}$"


class AdjustmentSchema(StrictSchema):
    points = fields.Integer(
        required=True,
        strict=True,
        validate=[
            validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT),
            validate.NoneOf([0], error="An adjustment adds or removes at least one point."),
        ],
        metadata={"description": "signed: positive adds points, negative removes them"},
    )
    reason = Text(
        required=True,
        validate=[
            validate.Length(min=3, max=200),
            validate.Regexp(r"\s*\S", error="A reason needs more than blanks."),
        ],
        metadata={"description": "why, for the audit log and the member's history"},
    )


class IdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # every other header

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=[
            validate.Length(min=1, max=64),
            validate.Regexp(CLIENT_ID, error=CLIENT_ID_ERROR),
        ],
        metadata={
            "description": "makes a retry safe: the same key and body answer with the first "
            "result (200) instead of adjusting again; printable ASCII, no spaces, 1-64"
        },
    )


class AdjustmentResultSchema(Schema):
    entry_id = fields.Integer()
    member_id = fields.Integer()
    points = fields.Integer()
    reason = fields.String()
    before = fields.Nested(PointsSchema)
    after = fields.Nested(PointsSchema)


class LiabilityQuerySchema(StrictSchema):
    from_month = Text(
        data_key="from",
        load_default=None,
        validate=validate.Regexp(_MONTH_PATTERN, error="A month is written YYYY-MM."),
        metadata={"description": "first month, YYYY-MM (default: eleven months before `to`)"},
    )
    to_month = Text(
        data_key="to",
        load_default=None,
        validate=validate.Regexp(_MONTH_PATTERN, error="A month is written YYYY-MM."),
        metadata={"description": "last month, YYYY-MM (default: the current month)"},
    )


class MovementsSchema(Schema):
    month = fields.String()
    earned = fields.Integer(metadata={"description": "earn, bonus, referral, adjustments > 0"})
    redeemed = fields.Integer(metadata={"description": "redeemed less redemptions returned"})
    expired = fields.Integer()
    reversed = fields.Integer(metadata={"description": "taken back by returns and voids"})
    adjusted_added = fields.Integer(metadata={"description": "also counted in earned"})
    adjusted_removed = fields.Integer()
    other = fields.Integer(metadata={"description": "entries of kinds not classified above"})
    net = fields.Integer(metadata={"description": "the change of all balances in the month"})


class BreakageSchema(Schema):
    expired = fields.Integer()
    earned = fields.Integer()
    ratio = fields.Decimal(as_string=True, allow_none=True, metadata={"example": "0.1250"})
    basis_points = fields.Integer(allow_none=True)


class LiabilityReportSchema(Schema):
    as_of = fields.AwareDateTime()
    currency = fields.String()
    timezone = fields.String(metadata={"description": "months are calendar months in this zone"})
    redeem_points = fields.Integer()
    redeem_value_minor = fields.Integer()
    outstanding_points = fields.Integer(
        metadata={"description": "available + pending, over positive balances only"}
    )
    available_points = fields.Integer()
    pending_points = fields.Integer()
    members_with_points = fields.Integer()
    points_owed = fields.Integer(metadata={"description": "debts, not netted against the rest"})
    members_owing = fields.Integer()
    value_minor = fields.Integer(
        metadata={"description": "outstanding x redeem_value_minor / redeem_points, rounded down"}
    )
    from_month = fields.String(data_key="from")
    to_month = fields.String(data_key="to")
    months = fields.List(fields.Nested(MovementsSchema))
    window = fields.Nested(MovementsSchema)
    breakage_window = fields.Nested(BreakageSchema)
    breakage_overall = fields.Nested(BreakageSchema)
