"""The program's settings."""

from __future__ import annotations

from zoneinfo import available_timezones

from marshmallow import Schema, ValidationError, fields, validate, validates

from api.fields import StrictSchema, Text
from loyalty.program import ExpiryPolicy, TierBasis


class ProgramChangeSchema(StrictSchema):
    name = Text(validate=validate.Length(min=1, max=120))
    timezone = Text(validate=validate.Length(min=1, max=64))
    earn_points = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))
    earn_per_minor = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    redeem_points = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    redeem_value_minor = fields.Integer(strict=True, validate=validate.Range(min=1, max=10**6))
    pending_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    expiry_policy = fields.String(validate=validate.OneOf([p.value for p in ExpiryPolicy]))
    expiry_months = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))
    reminder_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    tier_basis = fields.String(validate=validate.OneOf([b.value for b in TierBasis]))
    tier_window_months = fields.Integer(strict=True, validate=validate.Range(min=1, max=60))
    tier_grace_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))

    @validates("timezone")
    def _known_zone(self, value: str, **_: object) -> None:
        if value not in available_timezones():
            raise ValidationError("not an IANA time zone, e.g. Europe/London")


class ProgramSchema(Schema):
    name = fields.String(required=True)
    currency = fields.String(required=True, metadata={"description": "ISO 4217"})
    timezone = fields.String(required=True)
    earn_points = fields.Integer(required=True)
    earn_per_minor = fields.Integer(required=True)
    redeem_points = fields.Integer(required=True)
    redeem_value_minor = fields.Integer(required=True)
    pending_days = fields.Integer(required=True)
    expiry_policy = fields.String(required=True)
    expiry_months = fields.Integer(required=True)
    reminder_days = fields.Integer(required=True)
    tier_basis = fields.String(required=True)
    tier_window_months = fields.Integer(required=True)
    tier_grace_days = fields.Integer(required=True)
