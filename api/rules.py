"""Earning rules, for the marketer's console (staff keys with the `rules` scope)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api import context
from api.auth import current_staff, staff_required
from loyalty.rules import services as rules
from loyalty.rules.models import EarnRule
from loyalty.rules.schemas import RuleDefinition
from loyalty.staff.services import Scope

blp = Blueprint(
    "rules",
    __name__,
    url_prefix="/api/v1/rules",
    description="Earning rules: data the marketer changes, applied by every sale in a fixed, "
    'documented order (see README, "Earning rules"). A change never alters points already '
    "earned.",
)

_BODY = {"required": True, "content": {"application/json": {"schema": RuleDefinition}}}


class RuleSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    params = fields.Dict()
    priority = fields.Integer()
    stackable = fields.Boolean()
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    tiers = fields.List(fields.String(), allow_none=True)
    stores = fields.List(fields.String(), allow_none=True)
    cap_points = fields.Integer(allow_none=True)
    cap_period = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    archived_at = fields.AwareDateTime(allow_none=True)


class ListQuery(Schema):
    include_archived = fields.Boolean(load_default=False)


def _body() -> dict[str, Any]:
    """The JSON object sent; the domain validates its fields (shared with the CLI)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        detail = "the body must be a JSON object: the rule's fields"
        if not request.is_json:
            detail = "the body was not read: send a JSON object as Content-Type: application/json"
        raise rules.InvalidRule(detail, errors={"_body": [detail]})
    return body


@blp.route("", methods=["GET"])
@staff_required(Scope.RULES)
@blp.arguments(ListQuery(), location="query")
@blp.response(200, RuleSchema(many=True))
def list_rules(args: dict[str, Any]) -> list[EarnRule]:
    """Rules in evaluation order (priority, then id)."""
    return rules.list_rules(context.session(), include_archived=args["include_archived"])


@blp.route("", methods=["POST"])
@staff_required(Scope.RULES)
@blp.doc(requestBody=_BODY)
@blp.response(201, RuleSchema())
def create(**_: Any) -> EarnRule:
    return rules.create_rule(
        context.session(), _body(), actor=current_staff().actor, now=context.now()
    )


@blp.route("/<int:rule_id>", methods=["GET"])
@staff_required(Scope.RULES)
@blp.response(200, RuleSchema())
def read(rule_id: int) -> EarnRule:
    return rules.get_rule(context.session(), rule_id)


@blp.route("/<int:rule_id>", methods=["PATCH"])
@staff_required(Scope.RULES)
@blp.doc(requestBody=_BODY)
@blp.response(200, RuleSchema())
def change(rule_id: int) -> EarnRule:
    """Change some fields; the whole rule is validated again. Applies to sales from now on."""
    return rules.update_rule(
        context.session(), rule_id, _body(), actor=current_staff().actor, now=context.now()
    )


@blp.route("/<int:rule_id>", methods=["DELETE"])
@staff_required(Scope.RULES)
@blp.response(200, RuleSchema())
def archive(rule_id: int) -> EarnRule:
    """Archive a rule: it stops applying at once; its history stays."""
    return rules.archive_rule(
        context.session(), rule_id, actor=current_staff().actor, now=context.now()
    )
