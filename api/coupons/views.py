"""Coupons by code (staff scope `offers`), a member's wallet and the rewards catalogue (a till,
or staff with the `members` scope, for members it may read)."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from api.coupons.schemas import (
    ClaimedSchema,
    ClaimSchema,
    CouponSchema,
    RewardInSchema,
    RewardListSchema,
    RewardSchema,
    WalletSchema,
)
from api.fields import IdempotencyHeaderSchema
from api.openapi import Blueprint, idempotency
from loyalty.coupons import rewards, services
from loyalty.profiles.services import visible_member
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "coupons",
    __name__,
    url_prefix="/api/v1",
    description="Coupons by code, a member's wallet, and the rewards catalogue members buy "
    "with points.",
)

_LOCATION = {"Location": {"schema": {"type": "string"}}}


@blp.route("/coupons/<string:code>", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, CouponSchema)
@blp.problems(404)
def read(code: str) -> services.CouponView:
    """A coupon by its code (case, spaces, dashes and look-alike characters do not matter)."""
    return services.coupon_by_code(context.session(), code)


@blp.route("/coupons/<string:code>/qr.svg", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, description="the coupon's QR code", content_type="image/svg+xml")
@blp.problems(404)
def qr_svg_image(code: str) -> Response:
    """The coupon's QR code as SVG: it decodes to the code, which a till scans like a card."""
    return Response(services.qr_image(context.session(), code, "svg"), mimetype="image/svg+xml")


@blp.route("/coupons/<string:code>/qr.png", methods=["GET"])
@blp.staff(Scope.OFFERS)
@blp.response(200, description="the coupon's QR code", content_type="image/png")
@blp.problems(404)
def qr_png_image(code: str) -> Response:
    """The coupon's QR code as PNG."""
    return Response(services.qr_image(context.session(), code, "png"), mimetype="image/png")


@blp.route("/coupons/<string:code>/cancel", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.response(200, CouponSchema)
@blp.problems(404)
def cancel(code: str) -> services.CouponView:
    """Cancel a coupon; a reward's coupon never used gives its points back."""
    return rewards.cancel_coupon(context.session(), code, actor=auth.actor(), now=context.now())


@blp.route("/members/<int:member_id>/coupons", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, WalletSchema)
@blp.problems(404)
def wallet(member_id: int) -> dict[str, Any]:
    """The coupons the member can use now, as `identify` lists them."""
    session = context.session()
    visible_member(session, member_id, auth.viewer())
    return {"coupons": services.wallet(session, member_id, context.now())}


@blp.route("/rewards", methods=["GET"])
@blp.terminal_or_staff(Scope.OFFERS)
@blp.response(200, RewardListSchema)
def list_rewards() -> dict[str, Any]:
    """The catalogue: what each reward costs and gives, and how many are left."""
    return {"rewards": rewards.list_rewards(context.session())}


@blp.route("/rewards", methods=["POST"])
@blp.staff(Scope.OFFERS)
@blp.arguments(RewardInSchema())
@blp.response(201, RewardSchema, headers=_LOCATION)
@blp.problems(404)
def create_reward(args: dict[str, Any]) -> tuple[Any, ...]:
    """Add a reward: a coupon of an offer, for points, with an optional stock and limit per
    member."""
    reward = rewards.create_reward(context.session(), **args, actor=auth.actor(), now=context.now())
    return reward, 201, {"Location": url_for(".list_rewards")}


@blp.route("/members/<int:member_id>/rewards", methods=["POST"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(ClaimSchema())
@blp.response(201, ClaimedSchema)
@blp.replay(ClaimedSchema)
@blp.problems(404, 409)
def claim(args: dict[str, Any], member_id: int, idempotency_key: str | None) -> tuple[Any, ...]:
    """Buy a reward with points: the points are taken and the coupon issued together (the
    coupon is in the member's wallet at once). Out of stock and too few points are 409s.
    Send an Idempotency-Key: a retry with it claims nothing twice."""
    outcome = rewards.claim_reward_once(
        context.session(),
        idempotency(idempotency_key),
        member_id=member_id,
        reward_id=args["reward_id"],
        actor=auth.actor(),
        now=context.now(),
        viewer=auth.viewer(),
    )
    return (outcome.result, 201) if outcome.created else (outcome.result, 200)
