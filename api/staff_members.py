"""Staff work on members' points: manual adjustments (staff scope `points`)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api import context
from api.auth import current_staff, staff_required
from api.schemas import AdjustmentResultSchema, AdjustmentSchema, IdempotencyHeaderSchema
from loyalty.ledger.adjustments import Adjustment, Idempotency, adjust_points, adjust_points_once
from loyalty.staff.services import Scope

blp = Blueprint(
    "staff_members",
    __name__,
    url_prefix="/api/v1",
    description="Staff work on members: add or remove points by hand, audited (staff keys).",
)


@blp.route("/members/<int:member_id>/adjustments", methods=["POST"])
@staff_required(Scope.POINTS)
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(AdjustmentSchema)
@blp.response(201, AdjustmentResultSchema)
@blp.alt_response(200, schema=AdjustmentResultSchema, description="a replay: the first result")
def adjust(
    args: dict[str, Any], member_id: int, idempotency_key: str | None
) -> tuple[Adjustment, int]:
    """Add (`points` > 0) or remove (`points` < 0) points with a reason. Audited with who,
    when, why and the balance before and after. Removing more than the member has available
    is a 409: staff cannot create a debt. Unknown or erased members are a 404. With an
    `Idempotency-Key` header a retry answers 200 with the first result; the same key with a
    different body is a 409."""
    staff = current_staff()
    request = {
        "member_id": member_id,
        "points": args["points"],
        "reason": args["reason"],
        "actor": staff.actor,
        "now": context.now(),
    }
    if idempotency_key is None:
        return adjust_points(context.session(), **request), 201
    owner = Idempotency(owner=f"staff:{staff.id}", key=idempotency_key)
    outcome = adjust_points_once(context.session(), owner, **request)
    return outcome.adjustment, 201 if outcome.created else 200
