"""Programme figures for finance: the points liability."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import DecimalString, StrictSchema, Text

_MONTH_PATTERN = r"^\d{4}-\d{2}$"


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
    ratio = DecimalString(allow_none=True, metadata={"example": "0.1250"})
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
