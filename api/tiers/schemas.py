"""Tiers and where a member stands."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import StrictSchema, Text


class TierSchema(Schema):
    """A tier, the same wherever one is shown (identify, a sale, a member, the tier list)."""

    code = fields.String(required=True)
    name = fields.String(required=True)
    rank = fields.Integer(required=True, metadata={"description": "higher is better"})
    threshold = fields.Integer(
        required=True,
        metadata={"description": "spend (minor units) or points over the qualifying window"},
    )
    earn_multiplier_percent = fields.Integer(required=True, metadata={"example": 150})
    perks = fields.String(required=True)


class TierInSchema(StrictSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=24))
    name = Text(required=True, validate=validate.Length(min=1, max=80))
    rank = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=1000))
    threshold = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=10**12)
    )
    earn_multiplier_percent = fields.Integer(
        strict=True, load_default=100, validate=validate.Range(min=100, max=10_000)
    )
    perks = Text(load_default="", validate=validate.Length(max=2000))


class TierChangeSchema(StrictSchema):
    name = Text(validate=validate.Length(min=1, max=80))
    threshold = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12))
    earn_multiplier_percent = fields.Integer(
        strict=True, validate=validate.Range(min=100, max=10_000)
    )
    perks = Text(validate=validate.Length(max=2000))


class FloorInSchema(StrictSchema):
    tier = Text(required=True, validate=validate.Length(min=1, max=24))
    until = fields.AwareDateTime(load_default=None, allow_none=True)


class StandingSchema(Schema):
    tier = fields.Nested(TierSchema, required=True, allow_none=True)


class ProgressSchema(Schema):
    tier = fields.Nested(TierSchema, required=True, allow_none=True)
    next_tier = fields.Nested(TierSchema, required=True, allow_none=True)
    basis = fields.String(required=True, metadata={"description": "spend (minor units) or points"})
    qualifying = fields.Integer(required=True)
    needed = fields.Integer(required=True, allow_none=True)
    window_starts = fields.AwareDateTime(required=True)
    counts_until = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when the oldest counted purchase leaves the window"},
    )
