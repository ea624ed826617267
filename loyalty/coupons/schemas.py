"""An offer's definition as data (the API and the CLI send the same JSON): validated here, with
a message per field, so nothing is written when any part is wrong."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from loyalty.coupons.codes import CodeSpec
from loyalty.coupons.discounts import DiscountKind, Target

MAX_LIST = 500
_CODE = validate.Regexp(r"^[A-Za-z0-9._:/-]{1,64}$", error="letters, digits and . _ : / - only")
_NAME = validate.Length(min=1, max=120)


def _one_of(values: Any) -> validate.OneOf:
    return validate.OneOf([item.value for item in values])


def _codes() -> fields.List[Any]:
    return fields.List(
        fields.String(validate=_CODE), validate=validate.Length(max=MAX_LIST), load_default=list
    )


INT32 = 2**31 - 1


def _limit(*, most: int = 2**53, **kwargs: Any) -> fields.Integer:
    return fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=most, error=f"from 1 to {most:,}, or null"),
        **kwargs,
    )


class OfferDefinition(Schema):
    """Every field of an offer (PATCH sends some; the whole offer is checked again)."""

    name = fields.String(required=True, validate=_NAME)
    description = fields.String(load_default="", validate=validate.Length(max=500))
    kind = fields.String(required=True, validate=_one_of(DiscountKind))
    value = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**53))
    cap = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=1))
    target = fields.String(load_default=Target.BASKET.value, validate=_one_of(Target))
    skus = _codes()
    categories = _codes()
    buy_quantity = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))
    free_quantity = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))
    min_basket = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**53))
    starts_at = fields.AwareDateTime(allow_none=True, load_default=None)
    ends_at = fields.AwareDateTime(allow_none=True, load_default=None)
    tiers = _codes()
    stores = _codes()
    segment_id = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(1))
    uses_per_coupon = _limit(most=INT32)
    uses_per_member = _limit(most=INT32)
    uses_per_member_per_period = _limit(most=INT32)
    period = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(["day", "week", "month"])
    )
    total_redemptions = _limit()
    budget = _limit(metadata={"description": "money (minor units) or points given, in total"})
    exclusive = fields.Boolean(load_default=False)
    combinable_with = fields.List(
        fields.Integer(validate=validate.Range(min=1)),
        validate=validate.Length(max=MAX_LIST),
        load_default=list,
    )
    issue_at_sale_min = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=0)
    )
    coupon_valid_days = _limit(most=3650)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors = _value_errors(data)
        if data.get("target") == Target.ITEMS and not (data.get("skus") or data.get("categories")):
            errors["skus"] = ["name the SKUs or categories the offer applies to"]
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts is not None and ends is not None and ends <= starts:
            errors["ends_at"] = ["must be after starts_at"]
        if (data.get("uses_per_member_per_period") is None) != (data.get("period") is None):
            errors["period"] = ["uses_per_member_per_period and period go together"]
        if data.get("exclusive") and data.get("combinable_with"):
            errors["combinable_with"] = ["an exclusive offer combines with none"]
        if errors:
            raise ValidationError(errors)


PERCENT = 100


def _value_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """What the kind says about value, cap and quantities."""
    errors: dict[str, list[str]] = {}
    kind = data.get("kind")
    value = data.get("value", 0)
    if kind == DiscountKind.PERCENT_OFF and not 1 <= value <= PERCENT:
        errors["value"] = ["a percentage from 1 to 100"]
    elif kind in (DiscountKind.AMOUNT_OFF, DiscountKind.EXTRA_POINTS) and value < 1:
        errors["value"] = ["must be at least 1"]
    elif kind == DiscountKind.POINTS_MULTIPLIER and value <= PERCENT:
        errors["value"] = ["a percentage above 100 (200 doubles the points)"]
    if kind == DiscountKind.FREE_UNITS and not (
        data.get("buy_quantity", 0) >= 1 and data.get("free_quantity", 0) >= 1
    ):
        errors["buy_quantity"] = ["buy X get Y free needs buy_quantity and free_quantity >= 1"]
    if data.get("cap") is not None and kind != DiscountKind.PERCENT_OFF:
        errors["cap"] = ["only a percentage has a cap"]
    points = kind in (DiscountKind.EXTRA_POINTS, DiscountKind.POINTS_MULTIPLIER)
    if points and data.get("target", Target.BASKET) != Target.BASKET:
        errors["target"] = ["points offers apply to the whole basket"]
    return errors


class CodeSpecDefinition(Schema):
    """How unique codes are made (loyalty.coupons.codes.CodeSpec)."""

    count = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000_000))
    pattern = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64))
    length = fields.Integer(allow_none=True, load_default=None)
    charset = fields.String(load_default=None, allow_none=True)
    prefix = fields.String(load_default="")
    postfix = fields.String(load_default="")
    check_character = fields.Boolean(load_default=False)

    def spec(self, data: dict[str, Any]) -> CodeSpec:
        options = {k: v for k, v in data.items() if k != "count" and v is not None}
        if data.get("pattern") is None and data.get("length") is None:
            options["length"] = 8
        return CodeSpec(**options)
