"""Members and their cards, for tills (enrol at the counter) and integrations."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api import context
from api.auth import current_terminal, require_terminal
from api.limits import failed_lookups
from api.presenters import card_data, member_data
from api.schemas import (
    ActivateCardSchema,
    BlockCardSchema,
    CardSchema,
    EnrolSchema,
    LedgerPageSchema,
    LedgerQuerySchema,
    MemberSchema,
    ReplaceCardSchema,
)
from loyalty.cards import services as cards
from loyalty.cards.models import Card
from loyalty.cards.numbers import strip_separators
from loyalty.cards.qr import qr_png, qr_svg, sign_card
from loyalty.ledger import services as ledger
from loyalty.members import services as members

blp = Blueprint(
    "members",
    __name__,
    url_prefix="/api/v1",
    description="Enrol and read members; issue, block and replace their cards.",
)
blp.before_request(require_terminal)


def _member_view(member_id: int) -> dict[str, Any]:
    session = context.session()
    member = members.get_member(session, member_id)
    return member_data(
        member,
        ledger.balance_as_of(session, member.id, context.now()),
        cards.member_cards(session, member.id),
        context.settings().card_key,
    )


@blp.route("/members", methods=["POST"])
@blp.arguments(EnrolSchema())
@blp.response(201, MemberSchema)
def enrol(args: dict[str, Any]) -> dict[str, Any]:
    """Enrol a member at the till or online; hands over `card_code` or issues a new card."""
    terminal = current_terminal()
    member, _card = members.enrol(
        context.session(),
        members.Enrolment(**args),
        card_key=context.settings().card_key,
        phone_region=context.settings().phone_region,
        actor=terminal.actor,
        now=context.now(),
        store_id=terminal.store_id,
        store_code=terminal.store_code,
    )
    return _member_view(member.id)


@blp.route("/members/<int:member_id>", methods=["GET"])
@failed_lookups
@blp.response(200, MemberSchema)
def read(member_id: int) -> dict[str, Any]:
    return _member_view(member_id)


@blp.route("/members/<int:member_id>/ledger", methods=["GET"])
@blp.arguments(LedgerQuerySchema(), location="query")
@blp.response(200, LedgerPageSchema)
def history(args: dict[str, Any], member_id: int) -> dict[str, Any]:
    """Point entries, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    session = context.session()
    members.get_member(session, member_id)
    limit = args["limit"]
    entries = ledger.history(session, member_id, before_id=args["cursor"], limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return {"entries": entries, "next_cursor": entries[-1].id if more else None}


def _card(number: str) -> Card:
    return cards.find_card(context.session(), strip_separators(number), field="number")


@blp.route("/cards/<string:number>/qr.<any(svg, png):image_format>", methods=["GET"])
@failed_lookups
@blp.response(200, description="the card's QR code, as SVG or PNG")
def qr_image(number: str, image_format: str) -> Response:
    payload = sign_card(context.settings().card_key, _card(number).number)
    if image_format == "svg":
        return Response(qr_svg(payload), mimetype="image/svg+xml")
    return Response(qr_png(payload), mimetype="image/png")


@blp.route("/cards/<string:number>/block", methods=["POST"])
@failed_lookups
@blp.arguments(BlockCardSchema())
@blp.response(200, CardSchema)
def block(args: dict[str, Any], number: str) -> dict[str, Any]:
    """Block a card (lost, stolen): it stops working at every till at once."""
    card = cards.block_card(
        context.session(),
        card=_card(number),
        reason=args["reason"],
        actor=current_terminal().actor,
        now=context.now(),
    )
    return card_data(card, context.settings().card_key)


@blp.route("/cards/<string:number>/replace", methods=["POST"])
@failed_lookups
@blp.arguments(ReplaceCardSchema())
@blp.response(201, CardSchema)
def replace(args: dict[str, Any], number: str) -> dict[str, Any]:
    """Block a card and give its member another (`new_card_code`, or a newly issued one).
    The balance stays with the member."""
    card_key = context.settings().card_key
    new = cards.replace_card(
        context.session(),
        card_key=card_key,
        old=_card(number),
        reason=args["reason"],
        actor=current_terminal().actor,
        now=context.now(),
        new_code=args["new_card_code"],
    )
    return card_data(new, card_key)


@blp.route("/members/<int:member_id>/cards", methods=["POST"])
@failed_lookups
@blp.arguments(ActivateCardSchema())
@blp.response(201, CardSchema)
def add_card(args: dict[str, Any], member_id: int) -> dict[str, Any]:
    """Hand a pre-printed card to a member who has one already (say, enrolled online): both
    work. To take a lost card out of use, replace it instead."""
    session = context.session()
    member = members.get_member(session, member_id)
    card_key = context.settings().card_key
    card = cards.activate_card(
        session,
        card_key=card_key,
        code=args["card_code"],
        member_id=member.id,
        actor=current_terminal().actor,
        now=context.now(),
    )
    return card_data(card, card_key)
