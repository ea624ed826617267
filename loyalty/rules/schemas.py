"""What a rule definition may say, kind by kind. Marshmallow here is domain validation (the CLI
and the API share it), so a bad rule is refused with a message per field, wherever it comes
from."""

from __future__ import annotations

from datetime import time
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from loyalty.rules.engine import CapPeriod, Rounding, RuleKind

MAX_POINTS = 1_000_000
CODES = fields.List(
    fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=500)
)


def _points(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_POINTS), **kwargs)


def _percent(**kwargs: Any) -> fields.Integer:
    # 101 = x1.01 ... 10000 = x100; 100 would be no multiplier at all
    return fields.Integer(strict=True, validate=validate.Range(min=101, max=10_000), **kwargs)


class _Params(Schema):
    class Meta:
        unknown = RAISE


class SpendParams(_Params):
    points = _points(required=True)
    per_minor = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=1_000_000)
    )
    rounding = fields.String(
        load_default=Rounding.DOWN.value, validate=validate.OneOf([r.value for r in Rounding])
    )


class _Matching(_Params):
    skus = CODES
    categories = CODES

    @validates_schema
    def _something_to_match(self, data: dict[str, Any], **_: object) -> None:
        if not data.get("skus") and not data.get("categories"):
            raise ValidationError("name at least one SKU or category", "skus")


class ExclusionParams(_Matching):
    pass


def _mode_needs(data: dict[str, Any]) -> None:
    if data["mode"] == "multiply" and "multiplier_percent" not in data:
        raise ValidationError("a multiplier needs multiplier_percent", "multiplier_percent")
    if data["mode"] == "add" and not ({"points", "points_per_unit"} & data.keys()):
        raise ValidationError("an addition needs points", "points")


class ProductParams(_Matching):
    mode = fields.String(required=True, validate=validate.OneOf(["add", "multiply"]))
    points_per_unit = _points()
    multiplier_percent = _percent()

    @validates_schema
    def _mode(self, data: dict[str, Any], **_: object) -> None:
        if data.get("mode") == "add" and "points_per_unit" not in data:
            raise ValidationError("an addition needs points_per_unit", "points_per_unit")
        if data.get("mode"):
            _mode_needs(data | ({"points": 1} if "points_per_unit" in data else {}))


def _clock_time(value: str) -> None:
    try:
        time.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError("a local time as HH:MM") from exc


class PromotionParams(_Params):
    weekdays = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0, max=6)),
        validate=validate.Length(min=1, max=7),
        metadata={"description": "0 = Monday ... 6 = Sunday"},
    )
    from_time = fields.String(validate=_clock_time)
    until_time = fields.String(validate=_clock_time)
    mode = fields.String(required=True, validate=validate.OneOf(["add", "multiply"]))
    points = _points()
    multiplier_percent = _percent()

    @validates_schema
    def _window_and_mode(self, data: dict[str, Any], **_: object) -> None:
        start, end = data.get("from_time"), data.get("until_time")
        if start and end and time.fromisoformat(end) <= time.fromisoformat(start):
            raise ValidationError("the promotion ends before it starts", "until_time")
        if "mode" in data:
            _mode_needs(data)


class BonusParams(_Params):
    points = _points(required=True)


class VisitParams(BonusParams):
    min_basket = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=10**10)
    )


class BirthdayParams(BonusParams):
    window = fields.String(load_default="day", validate=validate.OneOf(["day", "week", "month"]))


class TierMultiplierParams(_Params):
    percents = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=24)),
        values=_percent(),
        load_default=dict,
        metadata={"description": "tier code -> percent; default: the tier's own earn multiplier"},
    )


PARAMS: dict[RuleKind, type[Schema]] = {
    RuleKind.SPEND: SpendParams,
    RuleKind.PRODUCT: ProductParams,
    RuleKind.EXCLUSION: ExclusionParams,
    RuleKind.VISIT: VisitParams,
    RuleKind.PROMOTION: PromotionParams,
    RuleKind.BIRTHDAY: BirthdayParams,
    RuleKind.SIGNUP: BonusParams,
    RuleKind.FIRST_PURCHASE: BonusParams,
    RuleKind.TIER_MULTIPLIER: TierMultiplierParams,
}


class RuleDefinition(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in RuleKind]))
    params = fields.Dict(load_default=dict)
    priority = fields.Integer(
        strict=True,
        load_default=100,
        validate=validate.Range(min=0, max=10_000),
        metadata={"description": "lower runs first"},
    )
    stackable = fields.Boolean(load_default=True)
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True)
    tiers = fields.List(
        fields.String(validate=validate.Length(min=1, max=24)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1),
    )
    stores = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1),
    )
    cap_points = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_POINTS),
    )
    cap_period = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf([p.value for p in CapPeriod])
    )

    # Both checks run even when other fields are wrong, so that a marketer sees every mistake
    # in one answer; a field that failed its own validation is simply absent from `data`.
    @validates_schema(skip_on_field_errors=False)
    def _consistent(self, data: dict[str, Any], **_: object) -> None:
        errors = {}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            errors["ends_at"] = ["the rule ends before it starts"]
        both_read = "cap_points" in data and "cap_period" in data  # absent: failed on its own
        if both_read and (data["cap_points"] is None) != (data["cap_period"] is None):
            errors["cap_period"] = ["a cap needs both cap_points and cap_period"]
        if errors:
            raise ValidationError(errors)

    @validates_schema(skip_on_field_errors=False)
    def _params_fit_the_kind(self, data: dict[str, Any], **_: object) -> None:
        if data.get("kind") is None or "params" not in data:
            return  # an unknown kind, or params that are no mapping: their own message says so
        try:
            PARAMS[RuleKind(data["kind"])]().load(data.get("params") or {})
        except ValidationError as exc:
            raise ValidationError({"params": exc.messages}) from exc

    @post_load
    def _params_of_kind(self, data: dict[str, Any], **_: object) -> dict[str, Any]:
        kind = RuleKind(data["kind"])
        data["params"] = PARAMS[kind]().load(data.get("params") or {})  # valid: checked above
        if kind == RuleKind.BIRTHDAY and data.get("cap_points") is None:
            # once a year unless said otherwise: a birthday is not a daily event
            data["cap_points"], data["cap_period"] = data["params"]["points"], CapPeriod.YEAR
        return data
