"""Cards: read one, its QR image, block it, replace it, hand a pre-printed one to a member."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from api.cards.schemas import ActivateCardSchema, BlockCardSchema, CardSchema, ReplaceCardSchema
from api.fields import IdempotencyHeaderSchema
from api.openapi import Blueprint, idempotency
from loyalty.cards.qr import qr_png, qr_svg
from loyalty.cards.services import (
    CardView,
    block_card_once,
    card_by_number,
    replace_card_once,
)
from loyalty.enrolment.services import hand_out_card_once
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "cards",
    __name__,
    url_prefix="/api/v1",
    description="QR cards: read, show, block, replace, hand a pre-printed card to a member.",
)

_LOCATION = {"Location": {"schema": {"type": "string"}}}


@blp.route("/cards/<string:number>", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, CardSchema)
@blp.problems(404)
def read(number: str) -> CardView:
    """A card by its number (spaces and dashes allowed). A till reads cards not yet handed out
    and those of members it may read (GET /members/{id}), without the QR payload."""
    return card_by_number(
        context.session(), number, card_key=context.settings().card_key, viewer=auth.viewer()
    )


def _payload(number: str) -> str:
    payload = card_by_number(context.session(), number, card_key=context.settings().card_key)
    return str(payload.qr_payload)  # staff see it


@blp.route("/cards/<string:number>/qr.svg", methods=["GET"])
@blp.staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, description="the card's QR code", content_type="image/svg+xml")
@blp.problems(404)
def qr_svg_image(number: str) -> Response:
    """The card's QR code as SVG (it decodes to the card's signed payload), for staff printing
    a card: whoever has it can copy the card."""
    return Response(qr_svg(_payload(number)), mimetype="image/svg+xml")


@blp.route("/cards/<string:number>/qr.png", methods=["GET"])
@blp.staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, description="the card's QR code", content_type="image/png")
@blp.problems(404)
def qr_png_image(number: str) -> Response:
    """The card's QR code as PNG (it decodes to the card's signed payload), for staff printing
    a card: whoever has it can copy the card."""
    return Response(qr_png(_payload(number)), mimetype="image/png")


@blp.route("/cards/<string:number>/block", methods=["POST"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(BlockCardSchema())
@blp.response(200, CardSchema)
@blp.problems(404, 409)
def block(args: dict[str, Any], number: str, idempotency_key: str | None) -> CardView:
    """Block a card (lost, stolen): it stops working at every till at once. A till blocks
    cards of the members it may read (GET /members/{id}); to it, others are a 404."""
    return block_card_once(
        context.session(),
        idempotency(idempotency_key),
        number=number,
        reason=args["reason"],
        keys=context.lookup_keys(),
        actor=auth.actor(),
        now=context.now(),
        viewer=auth.viewer(),
    ).result


@blp.route("/cards/<string:number>/replace", methods=["POST"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(ReplaceCardSchema())
@blp.response(201, CardSchema, headers=_LOCATION)
@blp.replay(CardSchema)
@blp.problems(404, 409)
def replace(args: dict[str, Any], number: str, idempotency_key: str | None) -> tuple[Any, ...]:
    """Block a card and give its member another (`new_card_code`, or a newly issued one). The
    balance stays with the member. Answers the new card."""
    outcome = replace_card_once(
        context.session(),
        idempotency(idempotency_key),
        number=number,
        reason=args["reason"],
        new_code=args["new_card_code"],
        keys=context.lookup_keys(),
        actor=auth.actor(),
        now=context.now(),
        viewer=auth.viewer(),
    )
    if not outcome.created:
        return outcome.result, 200
    return outcome.result, 201, {"Location": url_for(".read", number=outcome.result.number)}


@blp.route("/members/<int:member_id>/cards", methods=["POST"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(ActivateCardSchema())
@blp.response(201, CardSchema, headers=_LOCATION)
@blp.replay(CardSchema)
@blp.problems(404, 409)
def hand_out(args: dict[str, Any], member_id: int, idempotency_key: str | None) -> tuple[Any, ...]:
    """Hand a pre-printed card to a member who has one already (say, enrolled online): both
    work. To take a lost card out of use, replace it instead."""
    outcome = hand_out_card_once(
        context.session(),
        idempotency(idempotency_key),
        member_id=member_id,
        card_code=args["card_code"],
        keys=context.lookup_keys(),
        actor=auth.actor(),
        now=context.now(),
        viewer=auth.viewer(),
    )
    if not outcome.created:
        return outcome.result, 200
    return outcome.result, 201, {"Location": url_for(".read", number=outcome.result.number)}
