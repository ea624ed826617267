"""Tiers: defined by staff (`tiers` scope), read by tills and the console."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.openapi import Blueprint
from api.tiers.schemas import (
    FloorInSchema,
    ProgressSchema,
    StandingSchema,
    TierChangeSchema,
    TierInSchema,
    TierSchema,
)
from loyalty.staff.services import Scope
from loyalty.tiers import services as tiers
from loyalty.tiers.models import Tier
from server.core import auth, context

blp = Blueprint(
    "tiers",
    __name__,
    url_prefix="/api/v1",
    description="Tiers and each member's standing. Upgrades happen at the sale that crosses a "
    "threshold; downgrades only at the periodic review, after a grace period.",
)


@blp.route("/tiers", methods=["GET"])
@blp.terminal_or_staff()
@blp.response(200, TierSchema(many=True))
def list_tiers() -> list[Tier]:
    """Every tier, lowest rank first."""
    return tiers.all_tiers(context.session())


@blp.route("/tiers/<string:code>", methods=["GET"])
@blp.terminal_or_staff()
@blp.response(200, TierSchema)
@blp.problems(404)
def read(code: str) -> Tier:
    return tiers.get_tier(context.session(), code)


@blp.route("/tiers", methods=["POST"])
@blp.staff(Scope.TIERS)
@blp.arguments(TierInSchema())
@blp.response(201, TierSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.problems(409)
def create(args: dict[str, Any]) -> tuple[Any, ...]:
    """Add a tier (audited). A code or rank another tier has is a 409."""
    tier = tiers.create_tier(context.session(), **args, actor=auth.actor(), now=context.now())
    return tier, 201, {"Location": url_for(".read", code=tier.code)}


@blp.route("/tiers/<string:code>", methods=["PATCH"])
@blp.staff(Scope.TIERS)
@blp.arguments(TierChangeSchema())
@blp.response(200, TierSchema)
@blp.problems(404)
def change(args: dict[str, Any], code: str) -> Tier:
    """Change a tier's name, threshold, multiplier or perks (audited); members move at their
    next sale or review, never retroactively."""
    return tiers.update_tier(context.session(), code, args, actor=auth.actor(), now=context.now())


@blp.route("/members/<int:member_id>/tier-floor", methods=["PUT"])
@blp.staff(Scope.TIERS)
@blp.arguments(FloorInSchema())
@blp.response(200, StandingSchema)
@blp.problems(404)
def set_floor(args: dict[str, Any], member_id: int) -> tiers.Standing:
    """Give a member a tier until a date: they never sit below it meanwhile (audited)."""
    return tiers.set_floor(
        context.session(),
        member_id=member_id,
        tier_code=args["tier"],
        until=args["until"],
        actor=auth.actor(),
        now=context.now(),
    )


@blp.route("/members/<int:member_id>/tier-floor", methods=["DELETE"])
@blp.staff(Scope.TIERS)
@blp.response(200, StandingSchema)
@blp.problems(404)
def remove_floor(member_id: int) -> tiers.Standing:
    """End the member's staff-given floor now (audited); the tier they hold by qualifying is
    what remains. Removing a floor that is not there is a 200 that changes nothing."""
    return tiers.remove_floor(
        context.session(), member_id=member_id, actor=auth.actor(), now=context.now()
    )


@blp.route("/members/<int:member_id>/tier-progress", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.response(200, ProgressSchema)
@blp.problems(404)
def progress(member_id: int) -> tiers.Progress:
    """Where the member stands and what the next tier still needs, for the member page."""
    return tiers.member_progress(context.session(), member_id, context.now())
