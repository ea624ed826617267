"""What operators and load balancers call: /health and /metrics (not part of the API's OpenAPI
document; no database session is needed for a liveness answer)."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from loyalty.staff.services import Scope
from server.core import context
from server.core.auth import require_staff
from server.core.metrics import metrics_response

blp = Blueprint("operations", __name__)


def _redis_status() -> str:
    url = context.settings().redis_url
    if url is None:
        return "not configured"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError:
        return "unreachable"
    return "ok"


@blp.get("/health")
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


@blp.get("/metrics")
def metrics() -> Response:
    """Prometheus figures: public only with LOYALTY_PUBLIC_METRICS, else a staff key with the
    `metrics` scope."""
    if not context.settings().public_metrics:
        require_staff(Scope.METRICS)
    return metrics_response()
