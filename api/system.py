"""Health and program settings."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import text

from api import context
from api.auth import current_staff, staff_required, terminal_or_staff
from api.schemas import ProgramChangeSchema, ProgramSchema
from loyalty.program import get_program, update_program
from loyalty.staff.services import Scope

health_blp = Blueprint("health", __name__)


def _redis_status() -> str:
    url = context.settings().redis_url
    if url is None:
        return "not configured"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError:
        return "unreachable"
    return "ok"


@health_blp.get("/health")
def health() -> ResponseReturnValue:
    """Database and Redis reachability, for load balancers and operators: 503 when the database
    is down or a configured Redis cannot be reached."""
    try:
        context.session().execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - any failure here means "unreachable" to an operator
        database = "unreachable"
    redis_state = _redis_status()
    healthy = database == "ok" and redis_state in {"ok", "not configured"}
    body = {"status": "ok" if healthy else "degraded", "database": database, "redis": redis_state}
    return jsonify(body), 200 if healthy else 503


program_blp = ApiBlueprint(
    "program",
    __name__,
    url_prefix="/api/v1",
    description="The program's settings: read by tills and staff, changed by staff.",
)


@program_blp.route("/program", methods=["GET"])
@terminal_or_staff
@program_blp.response(200, ProgramSchema)
def program() -> Any:
    return get_program(context.session())


@program_blp.route("/program", methods=["PATCH"])
@staff_required(Scope.PROGRAM)
@program_blp.arguments(ProgramChangeSchema)
@program_blp.response(200, ProgramSchema)
def change_program(args: dict[str, Any]) -> Any:
    """Change settings (audited). Points already earned keep their terms."""
    return update_program(context.session(), actor=current_staff().actor, now=context.now(), **args)
