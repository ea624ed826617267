"""Balances, the history of point entries, staff adjustments."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import PageQuerySchema, StrictSchema, Text
from loyalty.ledger.adjustments import MAX_ADJUSTMENT


class BalanceSchema(Schema):
    """A member's points, wherever a balance is shown: spendable now, and still waiting."""

    available = fields.Integer(
        required=True, metadata={"description": "spendable now (negative: points owed)"}
    )
    pending = fields.Integer(required=True, metadata={"description": "earned, not spendable yet"})


class EntrySchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "earn, redeem, expire, reverse, adjust, bonus, referral, unlock"},
    )
    points = fields.Integer(required=True, metadata={"description": "change to `available`"})
    pending_points = fields.Integer(required=True, metadata={"description": "change to `pending`"})
    reason = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class EntryPageSchema(Schema):
    entries = fields.List(fields.Nested(EntrySchema), required=True)
    next_cursor = fields.Integer(
        required=True, allow_none=True, metadata={"description": "pass back as `cursor`"}
    )


class HistoryQuerySchema(PageQuerySchema):
    pass


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


class AdjustmentResultSchema(Schema):
    entry_id = fields.Integer(required=True)
    member_id = fields.Integer(required=True)
    points = fields.Integer(required=True)
    reason = fields.String(required=True)
    before = fields.Nested(BalanceSchema, required=True)
    after = fields.Nested(BalanceSchema, required=True)
