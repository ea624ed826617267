"""What operators and load balancers call: the health checks and /metrics (not part of the
API's OpenAPI document).

- `/health/live`: the process serves requests (restart it when this fails). Asks nothing else.
- `/health/ready` (and `/health`, the same): whether a till can be served. 200 when the
  database answers, with `status: degraded` if Redis does not (tills keep working: limits and
  sightings fall back to each worker's memory); 503 when the database does not answer.

Both answer within a second whatever the database and Redis do: the checks run on a thread of
their own and whatever has not answered in HEALTH_DEADLINE_SECONDS is reported as not
answering (a check still under way is not started twice)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as NotYet
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine

from loyalty.staff.services import Scope
from server.core import context
from server.core.auth import require_staff
from server.core.extensions import db
from server.core.metrics import metrics_response
from server.core.shared import SharedState

blp = Blueprint("operations", __name__)

HEALTH_DEADLINE_SECONDS = 0.7


def _database(engine: Engine) -> str:
    # On the driver's connection: no transaction of SQLAlchemy's, whose BEGIN IMMEDIATE would
    # queue behind SQLite's writers.
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        finally:
            connection.close()
    except Exception:  # noqa: BLE001 - any failure here means "unreachable" to an operator
        return "unreachable"
    return "ok"


def _redis(shared: SharedState) -> str:
    if not shared.configured:
        return "not configured"
    return shared.run(lambda redis: "ok" if redis.ping() else "unreachable", lambda: "unreachable")


@dataclass
class _Checks:
    """The checks under way, per app: one that has not finished is waited on again, not
    started again, so a frozen database does not pile up threads."""

    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")
    )
    running: dict[str, Future[str]] = field(default_factory=dict)

    def start(self, name: str, check: Callable[..., str], *args: Any) -> Future[str]:
        future = self.running.get(name)
        if future is None or future.done():
            future = self.running[name] = self.pool.submit(check, *args)
        return future


def _outcome(future: Future[str], deadline: float) -> str:
    try:
        return future.result(timeout=max(deadline - time.monotonic(), 0.0))
    except NotYet:
        return "not answering"


@blp.get("/health/live")
def live() -> ResponseReturnValue:
    """The process serves requests."""
    return jsonify({"status": "ok"})


@blp.get("/health")
@blp.get("/health/ready")
def ready() -> ResponseReturnValue:
    """Can a till be served: 200 (`ok`, or `degraded` without Redis) or 503 (no database)."""
    deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
    checks: _Checks = current_app.extensions.setdefault("loyalty.health", _Checks())
    database = checks.start("database", _database, db.engine)
    redis = checks.start("redis", _redis, current_app.extensions["loyalty.shared"])
    body = {"database": _outcome(database, deadline), "redis": _outcome(redis, deadline)}
    if body["database"] != "ok":
        return jsonify({"status": "unavailable", **body}), 503
    degraded = body["redis"] not in {"ok", "not configured"}
    return jsonify({"status": "degraded" if degraded else "ok", **body}), 200


@blp.get("/metrics")
def metrics() -> Response:
    """Prometheus figures: public only with LOYALTY_PUBLIC_METRICS, else a staff key with the
    `metrics` scope."""
    if not context.settings().public_metrics:
        require_staff(Scope.METRICS)
    return metrics_response()
