"""Staff work on members' points: manual adjustments (staff scope `points`)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api import context
from api.auth import current_staff, staff_required
from api.schemas import AdjustmentResultSchema, AdjustmentSchema
from loyalty.ledger.adjustments import Adjustment, adjust_points
from loyalty.staff.services import Scope

blp = Blueprint(
    "staff_members",
    __name__,
    url_prefix="/api/v1",
    description="Staff work on members: add or remove points by hand, audited (staff keys).",
)


@blp.route("/members/<int:member_id>/adjustments", methods=["POST"])
@staff_required(Scope.POINTS)
@blp.arguments(AdjustmentSchema)
@blp.response(201, AdjustmentResultSchema)
def adjust(args: dict[str, Any], member_id: int) -> Adjustment:
    """Add (`points` > 0) or remove (`points` < 0) points with a reason. Audited with who,
    when, why and the balance before and after. Removing more than the member has available
    is a 409: staff cannot create a debt. Unknown or erased members are a 404."""
    return adjust_points(
        context.session(),
        member_id=member_id,
        points=args["points"],
        reason=args["reason"],
        actor=current_staff().actor,
        now=context.now(),
    )
