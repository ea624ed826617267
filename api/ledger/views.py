"""A member's points: the history of entries, and staff adjustments (scope `points`)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.fields import IdempotencyHeaderSchema
from api.ledger.schemas import (
    AdjustmentResultSchema,
    AdjustmentSchema,
    EntryPageSchema,
    EntrySchema,
    HistoryQuerySchema,
)
from api.openapi import Blueprint, idempotency
from loyalty.ledger.adjustments import adjust_points_once
from loyalty.ledger.models import PointEntry
from loyalty.ledger.services import EntryPage, entry, history_page
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "ledger",
    __name__,
    url_prefix="/api/v1/members",
    description="A member's point entries; staff add or remove points by hand, audited.",
)


@blp.route("/<int:member_id>/ledger", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.arguments(HistoryQuerySchema(), location="query")
@blp.response(200, EntryPageSchema)
@blp.problems(404)
def history(args: dict[str, Any], member_id: int) -> EntryPage:
    """Point entries, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    return history_page(context.session(), member_id, before_id=args["cursor"], limit=args["limit"])


@blp.route("/<int:member_id>/ledger/<int:entry_id>", methods=["GET"])
@blp.terminal_or_staff(Scope.MEMBERS)
@blp.response(200, EntrySchema)
@blp.problems(404)
def read_entry(member_id: int, entry_id: int) -> PointEntry:
    """One entry of the member's history."""
    return entry(context.session(), member_id, entry_id)


@blp.route("/<int:member_id>/adjustments", methods=["POST"])
@blp.staff(Scope.POINTS)
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(AdjustmentSchema())
@blp.response(201, AdjustmentResultSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.replay(AdjustmentResultSchema)
@blp.problems(404, 409)
def adjust(args: dict[str, Any], member_id: int, idempotency_key: str | None) -> tuple[Any, ...]:
    """Add (`points` > 0) or remove (`points` < 0) points with a reason. Audited with who,
    when, why and the balance before and after. Removing more than the member has available
    is a 409: staff cannot create a debt. Unknown or erased members are a 404. With an
    `Idempotency-Key` header a retry answers 200 with the first result; the same key with a
    different body is a 409."""
    outcome = adjust_points_once(
        context.session(),
        idempotency(idempotency_key),
        member_id=member_id,
        points=args["points"],
        reason=args["reason"],
        actor=auth.actor(),
        now=context.now(),
    )
    if not outcome.created:
        return outcome.result, 200
    location = url_for(".read_entry", member_id=member_id, entry_id=outcome.result.entry_id)
    return outcome.result, 201, {"Location": location}
