"""The till contract of DESIGN.md: identify, quote, transactions, returns, void."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask_smorest import Blueprint

from api import context
from api.auth import current_terminal, require_terminal
from api.limits import failed_lookups
from api.presenters import card_data
from api.schemas import (
    BasketSchema,
    IdentifiedSchema,
    IdentifySchema,
    QuoteResultSchema,
    ReturnResultSchema,
    ReturnSchema,
    SaleResultSchema,
    SaleSchema,
)
from loyalty.members.services import identify as identify_member
from loyalty.rules.pricing import BasketLine
from loyalty.sales import services as sales

blp = Blueprint(
    "pos",
    __name__,
    url_prefix="/api/v1/pos",
    description="Calls a till makes. Every call needs `Authorization: Bearer <terminal key>`.",
)
blp.before_request(require_terminal)


def _basket(args: dict[str, Any]) -> sales.Basket:
    return sales.Basket(
        lines=[BasketLine(**line) for line in args["lines"]],
        member_code=args.get("code"),
        member_id=args.get("member_id"),
        coupon_codes=args.get("coupon_codes", []),
        redeem_points=args.get("redeem_points", 0),
    )


@blp.route("/identify", methods=["POST"])
@failed_lookups
@blp.arguments(IdentifySchema())
@blp.response(200, IdentifiedSchema)
def identify(args: dict[str, Any]) -> dict[str, Any]:
    """Who is this? Whatever the scanner typed: QR payload, card number, phone or email.

    Failed look-ups (404, 422) are rate limited per terminal, so card numbers cannot be guessed.
    """
    found = identify_member(context.session(), args["code"], context.lookup_keys(), context.now())
    return {
        "member": {"id": found.member_id, "name": found.name, "status": found.status},
        "card": card_data(found.card, context.settings().card_key) if found.card else None,
        "tier": found.tier.as_dict() if found.tier else None,
        "points": asdict(found.balance),
        "coupons": [],
    }


@blp.route("/quote", methods=["POST"])
@blp.arguments(BasketSchema())
@blp.response(200, QuoteResultSchema)
def quote(args: dict[str, Any]) -> dict[str, Any]:
    """Price a basket: discounts line by line, total, points to earn and why. Changes nothing."""
    return sales.quote(
        context.session(),
        _basket(args),
        context.lookup_keys(),
        store_code=current_terminal().store_code,
        now=context.now(),
    )


@blp.route("/transactions", methods=["POST"])
@blp.arguments(SaleSchema())
@blp.response(201, SaleResultSchema)
@blp.alt_response(200, schema=SaleResultSchema, description="a replay: the first result")
def record_sale(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Commit a sale, exactly once per `(store, external_id)`.

    201 the first time; 200 with the same body on a replay; 409 if the id was used for another
    body.
    """
    request = sales.SaleRequest(
        external_id=args["external_id"], occurred_at=args["occurred_at"], basket=_basket(args)
    )
    recorded = sales.record_sale(
        context.session(),
        terminal=current_terminal(),
        request=request,
        keys=context.lookup_keys(),
        now=context.now(),
    )
    return recorded.result, 201 if recorded.created else 200


@blp.route("/transactions/<string:external_id>/returns", methods=["POST"])
@blp.arguments(ReturnSchema())
@blp.response(201, ReturnResultSchema)
@blp.alt_response(200, schema=ReturnResultSchema, description="a replay: the first result")
def record_return(args: dict[str, Any], external_id: str) -> tuple[dict[str, Any], int]:
    """Return some or all goods of a sale; idempotent by the return's own `external_id`."""
    request = sales.ReturnRequest(
        external_id=args["external_id"],
        lines=[(line["sku"], line["quantity"]) for line in args["lines"]],
    )
    recorded = sales.record_return(
        context.session(),
        terminal=current_terminal(),
        sale_external_id=external_id,
        request=request,
        now=context.now(),
    )
    return recorded.result, 201 if recorded.created else 200


@blp.route("/transactions/<string:external_id>/void", methods=["POST"])
@blp.response(200, ReturnResultSchema)
def void(external_id: str) -> dict[str, Any]:
    """Cancel a whole sale. Voiding it again answers with the first result."""
    return sales.void_sale(
        context.session(),
        terminal=current_terminal(),
        sale_external_id=external_id,
        now=context.now(),
    ).result
