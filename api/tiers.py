"""Tiers: defined by staff (`tiers` scope), read by tills and the console."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import context
from api.auth import current_staff, staff_required, terminal_or_staff
from api.schemas import StrictSchema, Text
from loyalty.members.services import get_member
from loyalty.program import get_program
from loyalty.staff.services import Scope
from loyalty.tiers import services as tiers
from loyalty.tiers.models import Tier

blp = Blueprint(
    "tiers",
    __name__,
    url_prefix="/api/v1",
    description="Tiers and each member's standing. Upgrades happen at the sale that crosses a "
    "threshold; downgrades only at the periodic review, after a grace period.",
)


class TierOut(Schema):
    code = fields.String()
    name = fields.String()
    rank = fields.Integer()
    threshold = fields.Integer()
    earn_multiplier_percent = fields.Integer()
    perks = fields.String()


class TierIn(StrictSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=24))
    name = Text(required=True, validate=validate.Length(min=1, max=80))
    rank = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=1000))
    threshold = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=10**12)
    )
    earn_multiplier_percent = fields.Integer(
        strict=True, load_default=100, validate=validate.Range(min=100, max=10_000)
    )
    perks = Text(load_default="", validate=validate.Length(max=2000))


class TierChange(StrictSchema):
    name = Text(validate=validate.Length(min=1, max=80))
    threshold = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12))
    earn_multiplier_percent = fields.Integer(
        strict=True, validate=validate.Range(min=100, max=10_000)
    )
    perks = Text(validate=validate.Length(max=2000))


class FloorIn(StrictSchema):
    tier = Text(required=True, validate=validate.Length(min=1, max=24))
    until = fields.AwareDateTime(load_default=None, allow_none=True)


class StandingOut(Schema):
    tier = fields.Dict(allow_none=True)


class ProgressOut(Schema):
    tier = fields.Dict(allow_none=True)
    next_tier = fields.Dict(allow_none=True)
    basis = fields.String(metadata={"description": "spend (minor units) or points"})
    qualifying = fields.Integer()
    needed = fields.Integer(allow_none=True)
    window_starts = fields.AwareDateTime()
    counts_until = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "when the oldest counted purchase leaves the window"},
    )


@blp.route("/tiers", methods=["GET"])
@terminal_or_staff
@blp.response(200, TierOut(many=True))
def list_tiers() -> list[Tier]:
    return tiers.all_tiers(context.session())


@blp.route("/tiers", methods=["POST"])
@staff_required(Scope.TIERS)
@blp.arguments(TierIn())
@blp.response(201, TierOut())
def create(args: dict[str, Any]) -> Tier:
    return tiers.create_tier(
        context.session(), **args, actor=current_staff().actor, now=context.now()
    )


@blp.route("/tiers/<string:code>", methods=["PATCH"])
@staff_required(Scope.TIERS)
@blp.arguments(TierChange())
@blp.response(200, TierOut())
def change(args: dict[str, Any], code: str) -> Tier:
    return tiers.update_tier(
        context.session(), code, args, actor=current_staff().actor, now=context.now()
    )


@blp.route("/members/<int:member_id>/tier-floor", methods=["PUT"])
@staff_required(Scope.TIERS)
@blp.arguments(FloorIn())
@blp.response(200, StandingOut())
def set_floor(args: dict[str, Any], member_id: int) -> dict[str, Any]:
    """Give a member a tier until a date: they never sit below it meanwhile (audited)."""
    session = context.session()
    get_member(session, member_id)
    tier = tiers.set_floor(
        session,
        member_id=member_id,
        tier_code=args["tier"],
        until=args["until"],
        actor=current_staff().actor,
        now=context.now(),
    )
    return {"tier": tier.as_dict() if tier else None}


@blp.route("/members/<int:member_id>/tier-floor", methods=["DELETE"])
@staff_required(Scope.TIERS)
@blp.response(200, StandingOut())
def remove_floor(member_id: int) -> dict[str, Any]:
    """End the member's staff-given floor now (audited); the tier they hold by qualifying is
    what remains. Removing a floor that is not there is a 200 that changes nothing."""
    session = context.session()
    get_member(session, member_id)
    tier = tiers.remove_floor(
        session, member_id=member_id, actor=current_staff().actor, now=context.now()
    )
    return {"tier": tier.as_dict() if tier else None}


@blp.route("/members/<int:member_id>/tier-progress", methods=["GET"])
@terminal_or_staff
@blp.response(200, ProgressOut())
def progress(member_id: int) -> dict[str, Any]:
    """Where the member stands and what the next tier still needs, for the member page."""
    session = context.session()
    get_member(session, member_id)
    found = tiers.progress(session, member_id, get_program(session), context.now())
    return {
        "tier": found.tier.as_dict() if found.tier else None,
        "next_tier": found.next_tier.as_dict() if found.next_tier else None,
        "basis": found.basis,
        "qualifying": found.qualifying,
        "needed": found.needed,
        "window_starts": found.window_starts,
        "counts_until": found.counts_until,
    }
