"""Members: enrolment at the till or online, the member as shown, changes, staff search, and the
export of everything held about a member."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.fields import IdempotencyHeaderSchema
from api.members.schemas import (
    EnrolSchema,
    MemberChangeSchema,
    MemberExportSchema,
    MemberPageSchema,
    MemberSchema,
    MemberSearchQuerySchema,
)
from api.openapi import Blueprint, idempotency
from loyalty.enrolment.services import enrol_once
from loyalty.members.services import Enrolment, MemberChanges, MemberPage, search_members
from loyalty.profiles.services import (
    MemberExport,
    MemberProfile,
    change_member,
    export_member,
    profile,
)
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "members",
    __name__,
    url_prefix="/api/v1/members",
    description="Enrol, read and change members; staff search them and export their data.",
)


@blp.route("", methods=["POST"])
@blp.terminal()
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(EnrolSchema())
@blp.response(201, MemberSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.replay(MemberSchema)
@blp.problems(404, 409)
def enrol(enrolment: Enrolment, idempotency_key: str | None) -> tuple[Any, ...]:
    """Enrol a member at the till: hands over `card_code` (a pre-printed card) or issues a new
    card. An email or phone another member holds is a 409. With an `Idempotency-Key` a retry
    answers 200 with the first result."""
    terminal = auth.current_terminal()
    outcome = enrol_once(
        context.session(),
        idempotency(idempotency_key),
        enrolment,
        keys=context.lookup_keys(),
        actor=terminal.actor,
        now=context.now(),
        store_id=terminal.store_id,
        store_code=terminal.store_code,
    )
    if not outcome.created:
        return outcome.result, 200
    return outcome.result, 201, {"Location": url_for(".read", member_id=outcome.result.id)}


@blp.route("/<int:member_id>", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.response(200, MemberSchema)
@blp.problems(404)
def read(member_id: int) -> MemberProfile:
    """The member with their balance as of now, tier and cards. Staff (scope `members`) read
    any member in full; a till reads members enrolled at its store or identified there in the
    last hour (others are a 404), as a cashier needs them: contacts masked, no birthday, no
    QR payloads."""
    return profile(
        context.session(),
        member_id,
        card_key=context.settings().card_key,
        now=context.now(),
        viewer=auth.viewer(),
    )


@blp.route("/<int:member_id>", methods=["PATCH"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.lookup()
@blp.arguments(MemberChangeSchema())
@blp.response(200, MemberSchema)
@blp.problems(404, 409)
def change(changes: MemberChanges, member_id: int) -> MemberProfile:
    """Change name, email, phone, birthday or consents. A field left out stays as it is; null
    clears an email, a phone or a birthday (and the consent that needed it). Every consent
    change is kept with its time and who made it. A till changes the members it may read (see
    the GET), staff (scope `members`) any member."""
    return change_member(
        context.session(),
        member_id,
        changes,
        keys=context.lookup_keys(),
        actor=auth.actor(),
        now=context.now(),
        viewer=auth.viewer(),
    )


@blp.route("/<int:member_id>/export", methods=["GET"])
@blp.staff(Scope.MEMBERS)
@blp.response(200, MemberExportSchema)
@blp.problems(404)
def export(member_id: int) -> MemberExport:
    """Everything the programme holds about the member, as JSON: the right of access."""
    return export_member(
        context.session(), member_id, card_key=context.settings().card_key, now=context.now()
    )


@blp.route("", methods=["GET"])
@blp.staff(Scope.MEMBERS)
@blp.arguments(MemberSearchQuerySchema(), location="query")
@blp.response(200, MemberPageSchema)
def search(args: dict[str, Any]) -> MemberPage:
    """Find members by email, phone, card number or the start of the name (all that are given
    must match), by id; pass `next_cursor` back as `cursor` for the next page."""
    return search_members(
        context.session(),
        args["search"],
        phone_region=context.settings().phone_region,
        after_id=args["cursor"],
        limit=args["limit"],
    )
