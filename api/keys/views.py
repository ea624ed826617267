"""Keys, for the operator (staff scope `keys`): list tills, rotate a till's key with a grace
period, revoke a till, list staff keys. Every change is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api.keys.schemas import (
    RotatedSchema,
    RotateSchema,
    StaffKeyListSchema,
    TerminalListSchema,
    TerminalSchema,
)
from api.openapi import Blueprint
from loyalty.staff.services import Scope, list_staff_keys
from loyalty.stores.services import (
    RotatedKey,
    TerminalInfo,
    list_terminals,
    revoke_terminal_by_id,
    rotate_terminal_key,
)
from server.core import auth, context

blp = Blueprint(
    "keys",
    __name__,
    url_prefix="/api/v1",
    description="Tills' keys (rotate with a grace period, revoke) and the list of staff keys.",
)


@blp.route("/terminals", methods=["GET"])
@blp.staff(Scope.KEYS)
@blp.response(200, TerminalListSchema)
def terminals() -> dict[str, Any]:
    """Every till, by store and name, with when its key was last rotated; never a key."""
    return {"terminals": list_terminals(context.session())}


@blp.route("/terminals/<int:terminal_id>/rotate", methods=["POST"])
@blp.staff(Scope.KEYS)
@blp.arguments(RotateSchema())
@blp.response(200, RotatedSchema)
@blp.problems(404)
def rotate(grace_minutes: int, terminal_id: int) -> RotatedKey:
    """A new key for the till, shown this once. The old key keeps working for
    `grace_minutes` (up to a week) while the new one is put in the till, then stops."""
    return rotate_terminal_key(
        context.session(),
        terminal_id=terminal_id,
        grace=timedelta(minutes=grace_minutes),
        actor=auth.actor(),
        now=context.now(),
    )


@blp.route("/terminals/<int:terminal_id>/revoke", methods=["POST"])
@blp.staff(Scope.KEYS)
@blp.response(200, TerminalSchema)
@blp.problems(404)
def revoke(terminal_id: int) -> TerminalInfo:
    """Stop the till at once (a stolen till): its key and any key still in its grace period.
    A rotation brings it back with a new key."""
    return revoke_terminal_by_id(
        context.session(), terminal_id=terminal_id, actor=auth.actor(), now=context.now()
    )


@blp.route("/staff-keys", methods=["GET"])
@blp.staff(Scope.KEYS)
@blp.response(200, StaffKeyListSchema)
def staff_keys() -> dict[str, Any]:
    """Every staff key with its scopes, revoked ones too; never a key."""
    return {"staff_keys": list_staff_keys(context.session())}
