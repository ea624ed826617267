"""The program's settings: read by tills and staff, changed by staff (scope `program`)."""

from __future__ import annotations

from typing import Any

from api.openapi import Blueprint
from api.program.schemas import ProgramChangeSchema, ProgramSchema
from loyalty.program import ProgramSettings, get_program, update_program
from loyalty.staff.services import Scope
from server.core import auth, context

blp = Blueprint(
    "program",
    __name__,
    url_prefix="/api/v1",
    description="The program's settings: read by tills and staff, changed by staff.",
)


@blp.route("/program", methods=["GET"])
@blp.terminal_or_staff()
@blp.response(200, ProgramSchema)
def read() -> ProgramSettings:
    return get_program(context.session())


@blp.route("/program", methods=["PATCH"])
@blp.staff(Scope.PROGRAM)
@blp.arguments(ProgramChangeSchema())
@blp.response(200, ProgramSchema)
def change(args: dict[str, Any]) -> ProgramSettings:
    """Change settings (audited). Points already earned keep their terms."""
    return update_program(context.session(), actor=auth.actor(), now=context.now(), **args)
