"""The life of a request: an id (the caller's X-Request-ID, or a new one) echoed in the
response and in every log line and problem, one commit at the end (or a rollback), side effects
that wait for that commit, and one access log line."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import structlog
from flask import Flask, Response, g, request

from server.core.extensions import db

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_ID = re.compile(r"\A[A-Za-z0-9._:@/+=-]{1,128}\Z")

log = logging.getLogger("loyalty.access")


def request_id() -> str:
    value: str = g.request_id
    return value


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (never on a rollback)."""
    g.setdefault("after_commit", []).append(callback)


def _begin() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _ACCEPTED_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _commit_once(response: Response) -> Response:
    """The one place a request commits: after the view succeeded, or roll back everything."""
    if response.status_code < 400:  # noqa: PLR2004
        db.session.commit()
        for callback in g.pop("after_commit", []):
            callback()
    else:
        db.session.rollback()
    return response


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    rule = request.url_rule.rule if request.url_rule is not None else None
    log.info(
        "request",
        extra={
            "method": request.method,
            # the route, not the path: a path can hold a card number or an email
            "route": rule or "(no route)",
            "status": response.status_code,
            "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        },
    )
    return response


def register_request_lifecycle(app: Flask) -> None:
    app.before_request(_begin)
    # after_request functions run in the reverse order of registration: commit first
    app.after_request(_finish)
    app.after_request(_commit_once)
