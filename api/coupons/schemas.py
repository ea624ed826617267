"""Coupons, wallets and the rewards catalogue, as the API answers them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import StrictSchema, Text, positive_id
from api.ledger.schemas import BalanceSchema


class CouponSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    offer_id = fields.Integer(required=True)
    offer = fields.String(required=True, attribute="offer_name")
    source = fields.String(
        required=True,
        metadata={"description": "shared, generated, assigned, next_visit, reward, referral"},
    )
    status = fields.String(required=True, metadata={"description": "active or cancelled"})
    member_id = fields.Integer(required=True, allow_none=True)
    uses = fields.Integer(required=True)
    uses_left = fields.Integer(required=True, allow_none=True)
    valid_from = fields.AwareDateTime(required=True, allow_none=True)
    valid_until = fields.AwareDateTime(required=True, allow_none=True)


class WalletCouponSchema(Schema):
    """A coupon the member can use now."""

    code = fields.String(required=True)
    offer_id = fields.Integer(required=True)
    offer = fields.String(required=True, attribute="offer_name")
    gives = fields.String(required=True, metadata={"description": "what it gives, for a person"})
    valid_until = fields.AwareDateTime(required=True, allow_none=True)
    uses_left = fields.Integer(required=True, allow_none=True)


class WalletSchema(Schema):
    coupons = fields.List(fields.Nested(WalletCouponSchema), required=True)


class RewardInSchema(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=120))
    offer_id = positive_id(required=True, metadata={"description": "the coupon it gives"})
    points_cost = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    stock = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0)
    )
    per_member_limit = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    refund_unused = fields.Boolean(
        load_default=True,
        metadata={"description": "points come back if the coupon is cancelled or expires unused"},
    )


class RewardSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    offer_id = fields.Integer(required=True)
    gives = fields.String(required=True)
    points_cost = fields.Integer(required=True)
    stock = fields.Integer(required=True, allow_none=True)
    left = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: no limit"}
    )
    per_member_limit = fields.Integer(required=True, allow_none=True)
    refund_unused = fields.Boolean(required=True)
    active = fields.Boolean(required=True)


class RewardListSchema(Schema):
    rewards = fields.List(fields.Nested(RewardSchema), required=True)


class ClaimSchema(StrictSchema):
    reward_id = positive_id(required=True)


class ClaimedSchema(Schema):
    reward_id = fields.Integer(required=True)
    coupon_code = fields.String(required=True)
    points = fields.Integer(required=True, metadata={"description": "points taken"})
    balance = fields.Nested(BalanceSchema, required=True)
