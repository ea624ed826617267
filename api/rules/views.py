"""Earning rules, for the marketer's console (staff keys with the `rules` scope)."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from api.openapi import Blueprint
from api.rules.schemas import ListQuerySchema, RuleInSchema, RuleSchema
from loyalty.rules import services as rules
from loyalty.rules.models import EarnRule
from loyalty.staff.services import Scope
from server.core import auth, context
from server.core.jsonbody import loads_strict

blp = Blueprint(
    "rules",
    __name__,
    url_prefix="/api/v1/rules",
    description="Earning rules: data the marketer changes, applied by every sale in a fixed, "
    'documented order (see README, "Earning rules"). A change never alters points already '
    "earned.",
)

_BODY = {"required": True, "content": {"application/json": {"schema": RuleInSchema}}}


def _body() -> dict[str, Any]:
    """The JSON object sent; the domain validates its fields (shared with the CLI)."""
    body = loads_strict(request.get_data(cache=True)) if request.is_json else None
    if not isinstance(body, dict):
        detail = "the body must be a JSON object: the rule's fields"
        if not request.is_json:
            detail = "the body was not read: send a JSON object as Content-Type: application/json"
        raise rules.InvalidRule(detail, errors={"_body": [detail]})
    return body


@blp.route("", methods=["GET"])
@blp.staff(Scope.RULES)
@blp.arguments(ListQuerySchema(), location="query")
@blp.response(200, RuleSchema(many=True))
def list_rules(args: dict[str, Any]) -> list[EarnRule]:
    """Rules in evaluation order (priority, then id)."""
    return rules.list_rules(context.session(), include_archived=args["include_archived"])


@blp.route("", methods=["POST"])
@blp.staff(Scope.RULES)
@blp.doc(requestBody=_BODY)
@blp.response(201, RuleSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.problems(400, 413, 422)
def create() -> tuple[Any, ...]:
    """Add a rule; a bad definition is a 422 naming every field at fault."""
    rule = rules.create_rule(context.session(), _body(), actor=auth.actor(), now=context.now())
    return rule, 201, {"Location": url_for(".read", rule_id=rule.id)}


@blp.route("/<int:rule_id>", methods=["GET"])
@blp.staff(Scope.RULES)
@blp.response(200, RuleSchema)
@blp.problems(404)
def read(rule_id: int) -> EarnRule:
    return rules.get_rule(context.session(), rule_id)


@blp.route("/<int:rule_id>", methods=["PATCH"])
@blp.staff(Scope.RULES)
@blp.doc(requestBody=_BODY)
@blp.response(200, RuleSchema)
@blp.problems(400, 404, 413, 422)
def change(rule_id: int) -> EarnRule:
    """Change some fields; the whole rule is validated again. Applies to sales from now on."""
    return rules.update_rule(
        context.session(), rule_id, _body(), actor=auth.actor(), now=context.now()
    )


@blp.route("/<int:rule_id>", methods=["DELETE"])
@blp.staff(Scope.RULES)
@blp.response(200, RuleSchema)
@blp.problems(404)
def archive(rule_id: int) -> EarnRule:
    """Archive a rule: it stops applying at once; its history stays."""
    return rules.archive_rule(context.session(), rule_id, actor=auth.actor(), now=context.now())
