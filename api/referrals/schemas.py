"""Referrals: a member's code and funnel, the staff list, the programme's funnel, the terms."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import MAX_MINOR_UNITS, MAX_POINTS, PageQuerySchema, StrictBoolean, StrictSchema
from loyalty.db import MAX_ID
from loyalty.referrals.models import ReferralStatus, RefusalReason

_STATUSES = [status.value for status in ReferralStatus]
_REASONS = ", ".join(reason.value for reason in RefusalReason)
_DAYS = validate.Range(min=1, max=3650)


class FunnelSchema(Schema):
    invited = fields.Integer(required=True, metadata={"description": "link opens"})
    enrolled = fields.Integer(
        required=True, metadata={"description": "friends who enrolled with the code, refused too"}
    )
    pending = fields.Integer(
        required=True, metadata={"description": "waiting for their first qualifying purchase"}
    )
    qualified = fields.Integer(required=True)
    rewarded = fields.Integer(required=True)
    reversed = fields.Integer(
        required=True, metadata={"description": "rewards taken back: the purchase was returned"}
    )
    refused = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": f"refusals by reason: {_REASONS}"},
    )


class OwnReferralSchema(Schema):
    status = fields.String(required=True, metadata={"description": ", ".join(_STATUSES)})
    reason = fields.String(required=True, allow_none=True)
    qualify_by = fields.AwareDateTime(
        required=True, metadata={"description": "a qualifying purchase must be made by then"}
    )


class MemberReferralSchema(Schema):
    member_id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"example": "7K3M9QXD"})
    link = fields.String(
        required=True,
        attribute="link_path",
        metadata={"description": "the join page, on this site", "example": "/join/7K3M9QXD"},
    )
    funnel = fields.Nested(FunnelSchema, required=True)
    joined_through = fields.Nested(
        OwnReferralSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the member's own referral, when they enrolled with a code"},
    )


class ReferralSchema(Schema):
    id = fields.Integer(required=True)
    referrer_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: the code was nobody's"}
    )
    referee_id = fields.Integer(required=True, metadata={"description": "the friend"})
    code = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(_STATUSES)})
    reason = fields.String(
        required=True, allow_none=True, metadata={"description": f"of a refusal: {_REASONS}"}
    )
    created_at = fields.AwareDateTime(required=True)
    qualify_by = fields.AwareDateTime(required=True)
    qualified_sale_id = fields.Integer(required=True, allow_none=True)
    qualified_at = fields.AwareDateTime(required=True, allow_none=True)
    rewarded_at = fields.AwareDateTime(required=True, allow_none=True)
    referrer_points = fields.Integer(required=True)
    referee_points = fields.Integer(required=True)
    referrer_offer_id = fields.Integer(required=True, allow_none=True)
    referee_offer_id = fields.Integer(required=True, allow_none=True)
    reversible_until = fields.AwareDateTime(required=True, allow_none=True)
    reversed_at = fields.AwareDateTime(required=True, allow_none=True)


class ReferralPageSchema(Schema):
    referrals = fields.List(fields.Nested(ReferralSchema), required=True)
    next_cursor = fields.Integer(
        required=True, allow_none=True, metadata={"description": "pass back as `cursor`"}
    )


class ReferralListQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(_STATUSES))


class FunnelQuerySchema(StrictSchema):
    since = fields.Date(required=True, metadata={"description": "first day, YYYY-MM-DD"})
    until = fields.Date(required=True, metadata={"description": "last day (included)"})


class PeriodFunnelSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    timezone = fields.String(
        required=True, metadata={"description": "days are days in this time zone"}
    )
    funnel = fields.Nested(FunnelSchema, required=True)


class SettingsSchema(Schema):
    enabled = fields.Boolean(required=True)
    min_purchase = fields.Integer(
        required=True, metadata={"description": "minor units the friend's purchase must keep"}
    )
    qualify_within_days = fields.Integer(required=True)
    referrer_points = fields.Integer(required=True)
    referee_points = fields.Integer(required=True)
    referrer_offer_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "a coupon instead of points"}
    )
    referee_offer_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "a coupon instead of points"}
    )
    monthly_cap = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "referrals per referrer per calendar month; null: no cap"},
    )
    reversal_window_days = fields.Integer(required=True)


def _whole(low: int, high: int, *, allow_none: bool = False) -> fields.Integer:
    return fields.Integer(
        strict=True, allow_none=allow_none, validate=validate.Range(min=low, max=high)
    )


class SettingsChangeSchema(StrictSchema):
    enabled = StrictBoolean()
    min_purchase = _whole(0, MAX_MINOR_UNITS)
    qualify_within_days = fields.Integer(strict=True, validate=_DAYS)
    referrer_points = _whole(0, MAX_POINTS)
    referee_points = _whole(0, MAX_POINTS)
    referrer_offer_id = _whole(1, MAX_ID, allow_none=True)
    referee_offer_id = _whole(1, MAX_ID, allow_none=True)
    monthly_cap = _whole(1, 1_000_000, allow_none=True)
    reversal_window_days = _whole(0, 3650)
