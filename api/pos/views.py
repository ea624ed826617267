"""The till contract of DESIGN.md: identify, quote, transactions, returns, void."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.openapi import Blueprint
from api.pos.schemas import (
    BasketSchema,
    IdentifiedSchema,
    IdentifySchema,
    QuoteSchema,
    ReturnResultSchema,
    ReturnSchema,
    SaleResultSchema,
    SaleSchema,
    SaleViewSchema,
    VoidResultSchema,
)
from loyalty.checkout import receipts, returns
from loyalty.checkout.identify import CouponScan, Identification, identify_or_coupon
from loyalty.checkout.results import Quote, ReturnResult, SaleResult, VoidResult
from loyalty.checkout.returns import ReturnRequest
from loyalty.checkout.services import Basket, SaleRequest, quote, record_sale
from loyalty.sales.services import SaleView
from server.core import auth, context
from server.core.auth import current_terminal
from server.core.limits import unknown_coupons
from server.core.metrics import RETURNS, count_sale
from server.core.requests import after_commit

blp = Blueprint(
    "pos",
    __name__,
    url_prefix="/api/v1/pos",
    description="Calls a till makes. Every call needs `Authorization: Bearer <terminal key>`.",
)

Answer = tuple[Any, int, dict[str, str]] | tuple[Any, int]


def _created(result: Any, created: bool, location: str) -> Answer:  # noqa: FBT001
    """201 with the new resource's Location the first time, 200 on a replay."""
    return (result, 201, {"Location": location}) if created else (result, 200)


@blp.route("/identify", methods=["POST"])
@blp.terminal()
@blp.lookup()
@blp.arguments(IdentifySchema())
@blp.response(200, IdentifiedSchema)
@blp.problems(404, 409)
def identify_member(args: dict[str, Any]) -> Identification | CouponScan:
    """Who is this? Whatever the scanner typed: QR payload, card number, phone or email.

    A forged or damaged QR, or a card number whose check digit is wrong, is a 422; an unknown
    card or member a 404; a blocked card or member a 409. Failed look-ups are budgeted per
    terminal (429), so card numbers cannot be guessed; once the budget is spent a scanned QR
    still works. The member is shown as a cashier needs them (contacts masked), and the till
    may read them by id for an hour. A coupon's code or QR works too (see `scanned_coupon`).
    """
    return identify_or_coupon(
        context.session(), args["code"], context.lookup_keys(), context.now(), auth.viewer()
    )


@blp.route("/quote", methods=["POST"])
@blp.terminal()
@blp.lookup()
@blp.arguments(BasketSchema())
@blp.response(200, QuoteSchema)
@blp.problems(404, 409)
def quote_basket(basket: Basket) -> Quote:
    """Price a basket: discounts line by line, total, points to earn and why. Changes nothing.

    Coupon codes that match no coupon count as failed look-ups (per till and per member): the
    quote that spends the budget is a 429."""
    priced = quote(
        context.session(),
        basket,
        context.lookup_keys(),
        store_code=current_terminal().store_code,
        now=context.now(),
        viewer=auth.viewer(),
    )
    unknown_coupons(priced.coupons, priced.member_id, refuse=True)
    return priced


@blp.route("/transactions", methods=["POST"])
@blp.terminal()
@blp.lookup()
@blp.arguments(SaleSchema())
@blp.response(201, SaleResultSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.replay(SaleResultSchema)
@blp.problems(404, 409)
def record(request: SaleRequest) -> Answer:
    """Commit a sale, exactly once per `(store, external_id)`.

    201 the first time (Location: the sale); 200 with the same body on a replay; 409 if the id
    was used for another body.
    """
    recorded = record_sale(
        context.session(),
        terminal=current_terminal(),
        request=request,
        keys=context.lookup_keys(),
        now=context.now(),
        viewer=auth.viewer(),
    )
    result: SaleResult = recorded.result
    unknown_coupons(result.coupons, result.member_id, refuse=False)
    if recorded.created:
        after_commit(lambda: count_sale(result.points.earned, result.points.redeemed))
    location = url_for(".read_sale", external_id=request.external_id)
    return _created(result, recorded.created, location)


@blp.route("/transactions/<string:external_id>", methods=["GET"])
@blp.terminal()
@blp.response(200, SaleViewSchema)
@blp.problems(404)
def read_sale(external_id: str) -> SaleView:
    """A sale of this store as it stands now, with its lines and returns (a receipt look-up)."""
    return receipts.read_sale(context.session(), current_terminal(), external_id)


@blp.route("/transactions/<string:external_id>/returns", methods=["POST"])
@blp.terminal()
@blp.arguments(ReturnSchema())
@blp.response(201, ReturnResultSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.replay(ReturnResultSchema)
@blp.problems(404, 409)
def record_return(request: ReturnRequest, external_id: str) -> Answer:
    """Return some or all goods of a sale; idempotent by the return's own `external_id`."""
    recorded = returns.record_return(
        context.session(),
        terminal=current_terminal(),
        sale_external_id=external_id,
        request=request,
        now=context.now(),
    )
    if recorded.created:
        after_commit(RETURNS.inc)
    location = url_for(".read_return", external_id=external_id, return_id=request.external_id)
    return _created(recorded.result, recorded.created, location)


@blp.route("/transactions/<string:external_id>/returns/<string:return_id>", methods=["GET"])
@blp.terminal()
@blp.response(200, ReturnResultSchema)
@blp.problems(404)
def read_return(external_id: str, return_id: str) -> ReturnResult:
    """A return as it was first answered."""
    return receipts.read_return(context.session(), current_terminal(), external_id, return_id)


@blp.route("/transactions/<string:external_id>/void", methods=["POST"])
@blp.terminal()
@blp.response(201, VoidResultSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.replay(VoidResultSchema)
@blp.problems(404, 409)
def void(external_id: str) -> Answer:
    """Cancel a whole sale: 201 the first time, 200 with the first result when voided again."""
    recorded = returns.void_sale(
        context.session(),
        terminal=current_terminal(),
        sale_external_id=external_id,
        now=context.now(),
    )
    if recorded.created:
        after_commit(RETURNS.inc)
    return _created(
        recorded.result, recorded.created, url_for(".read_void", external_id=external_id)
    )


@blp.route("/transactions/<string:external_id>/void", methods=["GET"])
@blp.terminal()
@blp.response(200, VoidResultSchema)
@blp.problems(404)
def read_void(external_id: str) -> VoidResult:
    """A void as it was first answered."""
    return receipts.read_void(context.session(), current_terminal(), external_id)
