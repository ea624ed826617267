"""Earning rules. A rule's definition is validated by the domain (loyalty/rules/schemas.py,
shared with the CLI); the shapes here are what the API sends, and what the document shows a
client should send."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import StrictSchema
from loyalty.rules.engine import CapPeriod, Rounding, RuleKind


def _one_of(values: object) -> validate.OneOf:
    return validate.OneOf([item.value for item in values])  # type: ignore[attr-defined]


class RuleParamsSchema(Schema):
    """What each kind of rule takes; a rule uses the fields of its kind only (README, "Earning
    rules")."""

    points = fields.Integer(metadata={"description": "spend, visit, birthday, signup, promotion"})
    per_minor = fields.Integer(metadata={"description": "spend: points per this many minor units"})
    rounding = fields.String(validate=_one_of(Rounding), metadata={"description": "spend"})
    skus = fields.List(fields.String(), metadata={"description": "product, exclusion"})
    categories = fields.List(fields.String(), metadata={"description": "product, exclusion"})
    mode = fields.String(
        validate=validate.OneOf(["add", "multiply"]), metadata={"description": "product, promotion"}
    )
    points_per_unit = fields.Integer(metadata={"description": "product, mode add"})
    multiplier_percent = fields.Integer(metadata={"description": "150 = x1.5"})
    weekdays = fields.List(fields.Integer(), metadata={"description": "0 = Monday … 6 = Sunday"})
    from_time = fields.String(metadata={"description": "promotion: local HH:MM"})
    until_time = fields.String(metadata={"description": "promotion: local HH:MM"})
    min_basket = fields.Integer(metadata={"description": "visit: minor units"})
    window = fields.String(
        validate=validate.OneOf(["day", "week", "month"]), metadata={"description": "birthday"}
    )
    percents = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "tier_multiplier: tier code -> percent"},
    )


class RuleInSchema(Schema):
    """A rule's definition (PATCH: any of these fields; the whole rule is checked again)."""

    name = fields.String(required=True)
    kind = fields.String(required=True, validate=_one_of(RuleKind))
    params = fields.Nested(RuleParamsSchema)
    priority = fields.Integer(metadata={"description": "lower runs first"})
    stackable = fields.Boolean()
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    tiers = fields.List(fields.String(), allow_none=True)
    stores = fields.List(fields.String(), allow_none=True)
    cap_points = fields.Integer(allow_none=True)
    cap_period = fields.String(allow_none=True, validate=_one_of(CapPeriod))


class RuleSchema(RuleInSchema):
    id = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    archived_at = fields.AwareDateTime(required=True, allow_none=True)


class ListQuerySchema(StrictSchema):
    include_archived = fields.Boolean(load_default=False)
