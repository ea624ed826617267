"""Offers, for the marketer (staff keys with the `offers` scope): define what a coupon gives,
when and to whom; shared codes; unique codes generated in bulk (a background job with
progress, exported as CSV for printing); coupons assigned to members. Every change is audited;
a change never alters coupons already redeemed."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, stream_with_context, url_for

from api.coupons.schemas import CouponSchema
from api.offers.schemas import (
    AssignedSchema,
    AssignmentSchema,
    AssignSchema,
    BatchSchema,
    GenerateSchema,
    ListQuerySchema,
    OfferSchema,
    SharedCodeSchema,
)
from api.openapi import Blueprint
from loyalty.coupons import offers, services
from loyalty.coupons.offers import InvalidOffer, OfferView
from loyalty.coupons.schemas import OfferDefinition
from loyalty.jobs.services import submit
from loyalty.staff.services import Scope
from server.core import auth, context
from server.core.jsonbody import loads_strict
from server.core.requests import after_commit

blp = Blueprint(
    "offers",
    __name__,
    url_prefix="/api/v1/offers",
    description="Offers and their coupons: what a coupon gives, when and to whom (README, "
    '"Offers and coupons"). A change applies from then on; redeemed coupons keep what they gave.',
)

_BODY = {"required": True, "content": {"application/json": {"schema": OfferDefinition}}}
_LOCATION = {"Location": {"schema": {"type": "string"}}}


def _body() -> dict[str, Any]:
    """The JSON object sent; the domain validates its fields (shared with the CLI)."""
    body = loads_strict(request.get_data(cache=True)) if request.is_json else None
    if not isinstance(body, dict):
        detail = "the body must be a JSON object: the offer's fields"
        if not request.is_json:
            detail = "the body was not read: send a JSON object as Content-Type: application/json"
        raise InvalidOffer(detail, errors={"_body": [detail]})
    return body


@blp.route("", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.arguments(ListQuerySchema(), location="query")
@blp.response(200, OfferSchema(many=True))
def list_offers(args: dict[str, Any]) -> list[OfferView]:
    """Offers by id, with what is left of their limits and budgets."""
    return offers.list_offers(context.session(), include_archived=args["include_archived"])


@blp.route("", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.doc(requestBody=_BODY)
@blp.response(201, OfferSchema, headers=_LOCATION)
@blp.problems(400, 413, 422)
def create() -> tuple[Any, ...]:
    """Add an offer; a bad definition is a 422 naming every field at fault, nothing written."""
    offer = offers.create_offer(context.session(), _body(), actor=auth.actor(), now=context.now())
    return offer, 201, {"Location": url_for(".read", offer_id=offer.id)}


@blp.route("/<int:offer_id>", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, OfferSchema)
@blp.problems(404)
def read(offer_id: int) -> OfferView:
    return offers.get_offer(context.session(), offer_id)


@blp.route("/<int:offer_id>", methods=["PATCH"])
@blp.staff(Scope.OFFERS)
@blp.doc(requestBody=_BODY)
@blp.response(200, OfferSchema)
@blp.problems(400, 404, 413, 422)
def change(offer_id: int) -> OfferView:
    """Change some fields; the whole offer is checked again and its version goes up."""
    return offers.update_offer(
        context.session(), offer_id, _body(), actor=auth.actor(), now=context.now()
    )


@blp.route("/<int:offer_id>/archive", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.response(200, OfferSchema)
@blp.problems(404)
def archive(offer_id: int) -> OfferView:
    """No coupon of the offer is redeemed or issued from now on; its history stays."""
    return offers.archive_offer(context.session(), offer_id, actor=auth.actor(), now=context.now())


@blp.route("/<int:offer_id>/shared-codes", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.arguments(SharedCodeSchema())
@blp.response(201, CouponSchema, headers=_LOCATION)
@blp.problems(404, 409)
def shared_code(args: dict[str, Any], offer_id: int) -> tuple[Any, ...]:
    """A code many people type ("SUMMER10"), limited by the offer's limits."""
    coupon = services.create_shared_coupon(
        context.session(), offer_id, args["code"], actor=auth.actor(), now=context.now()
    )
    return coupon, 201, {"Location": url_for("coupons.read", code=coupon.code)}


@blp.route("/<int:offer_id>/code-batches", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.arguments(GenerateSchema())
@blp.response(201, BatchSchema, headers=_LOCATION)
@blp.alt_response(202, schema=BatchSchema, description="the codes are being made by a job")
@blp.problems(404)
def generate(args: dict[str, Any], offer_id: int) -> tuple[Any, ...]:
    """Generate `count` unique codes (up to 10,000,000), never one another coupon of the
    program has. Up to 20,000 are made at once (201); more by a background job (202: RQ when
    Redis is configured, a thread of this process otherwise) whose progress is at the
    Location. A pattern too small for the count is a 422, nothing written."""
    session = context.session()
    spec = GenerateSchema().spec(args)
    batch = services.request_codes(
        session, offer_id, spec, args["count"], actor=auth.actor(), now=context.now()
    )
    location = {"Location": url_for(".batch", batch_id=batch.id)}
    if batch.requested <= services.GENERATION_BATCH:
        done = services.generate_codes(session, batch.id, context.now, checkpoint=session.flush)
        return done, 201, location
    settings = context.settings()

    def start() -> None:
        submit("generate-codes", settings=settings, background=True)

    after_commit(start)
    return batch, 202, location


@blp.route("/code-batches/<int:batch_id>", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, BatchSchema)
@blp.problems(404)
def batch(batch_id: int) -> services.BatchView:
    """How far a batch has got: `made` of `requested`."""
    return services.get_batch(context.session(), batch_id)


@blp.route("/code-batches/<int:batch_id>/codes.csv", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, description="code,offer_id lines", content_type="text/csv")
@blp.problems(404)
def export(batch_id: int) -> Response:
    """The batch's codes as CSV, streamed (a million codes never sit in memory)."""
    session = context.session()
    services.get_batch(session, batch_id)
    lines = services.export_codes(session, batch_id)
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="codes-{batch_id}.csv"'},
    )


@blp.route("/<int:offer_id>/assignments", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.arguments(AssignSchema())
@blp.response(200, AssignedSchema)
@blp.alt_response(
    202, schema=AssignmentSchema, description="the list is being worked through by a job"
)
@blp.problems(404)
def assign(args: dict[str, Any], offer_id: int) -> Any:
    """Give each listed member a coupon of the offer (it shows in their wallet and at the
    till). Assigning again gives nobody a second one. Up to 5,000 members are given theirs at
    once (200); a longer list goes to the `assign-coupons` job (202, its progress at the
    Location). Lists of millions: `loyalty coupons assign` with a file."""
    session, ids = context.session(), args["member_ids"]
    if len(ids) <= services.ASSIGN_BATCH:
        return services.assign_coupons(
            session, offer_id, ids, actor=auth.actor(), now=context.now()
        )
    job = services.request_assignment(session, offer_id, ids, actor=auth.actor(), now=context.now())
    settings = context.settings()

    def start() -> None:
        submit("assign-coupons", settings=settings, background=True)

    after_commit(start)
    # a shape of its own (the 200's is what was given): answered as it is
    response = jsonify(AssignmentSchema().dump(job))
    response.status_code = 202
    response.headers["Location"] = url_for(".assignment", assignment_id=job.id)
    return response


@blp.route("/assignments/<int:assignment_id>", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, AssignmentSchema)
@blp.problems(404)
def assignment(assignment_id: int) -> services.AssignmentView:
    """How far an assignment has got: `processed` of `requested` members."""
    return services.get_assignment(context.session(), assignment_id)
