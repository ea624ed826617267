"""Referrals: a member's code, link and funnel (a till, or staff with the `members` scope), and
for staff with the `referrals` scope the list of referrals, the programme's funnel and the
referral terms."""

from __future__ import annotations

from typing import Any

from api.openapi import Blueprint
from api.referrals.schemas import (
    FunnelQuerySchema,
    MemberReferralSchema,
    PeriodFunnelSchema,
    ReferralListQuerySchema,
    ReferralPageSchema,
    SettingsChangeSchema,
    SettingsSchema,
)
from loyalty.referrals import services as referrals
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "referrals",
    __name__,
    url_prefix="/api/v1",
    description="Friend brings friend: each member's code and link, the referrals and what "
    "became of them, the funnel, and the terms.",
)


@blp.route("/members/<int:member_id>/referral", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, MemberReferralSchema)
@blp.problems(404)
def member_referral(member_id: int) -> referrals.MemberReferral:
    """The member's referral code and link (made the first time it is asked for), the funnel
    of the friends they brought, and how their own referral stands. A till reads the members
    it may read (see `GET /members/{id}`)."""
    return referrals.member_referral(
        context.session(), member_id, now=context.now(), viewer=auth.viewer()
    )


@blp.route("/referrals", methods=["GET"])
@blp.staff(Scope.REFERRALS)
@blp.arguments(ReferralListQuerySchema(), location="query")
@blp.response(200, ReferralPageSchema)
def list_referrals(args: dict[str, Any]) -> referrals.ReferralPage:
    """Referrals newest first, of one `status` if given; pass `next_cursor` back as `cursor`
    for the next page."""
    return referrals.list_referrals(
        context.session(), status=args["status"], before_id=args["cursor"], limit=args["limit"]
    )


@blp.route("/referrals/funnel", methods=["GET"])
@blp.staff(Scope.REFERRALS)
@blp.arguments(FunnelQuerySchema(), location="query")
@blp.response(200, PeriodFunnelSchema)
def funnel(args: dict[str, Any]) -> referrals.PeriodFunnel:
    """The programme's funnel from `since` to `until` (days in the program's time zone, both
    included): link opens on those days, and the referrals recorded on them with what became
    of them since."""
    return referrals.program_funnel(context.session(), args["since"], args["until"])


@blp.route("/referral-settings", methods=["GET"])
@blp.staff(Scope.REFERRALS)
@blp.response(200, SettingsSchema)
def read_settings() -> referrals.ReferralTerms:
    """The referral terms in force."""
    return referrals.referral_settings(context.session())


@blp.route("/referral-settings", methods=["PATCH"])
@blp.staff(Scope.REFERRALS)
@blp.arguments(SettingsChangeSchema())
@blp.response(200, SettingsSchema)
def change_settings(args: dict[str, Any]) -> referrals.ReferralTerms:
    """Change the terms named (audited). Referrals already recorded keep their qualifying
    window; rewards already given stay. An offer id gives that side a coupon of the offer
    instead of points (null: points again); an unknown offer is a 422."""
    return referrals.update_settings(context.session(), args, actor=auth.actor(), now=context.now())
