"""The life of a request: an id (the caller's X-Request-ID, or a new one) echoed in the
response and in every log line and problem, one commit at the end (or a rollback), side effects
that wait for that commit, its duration in the metrics, and (LOYALTY_ACCESS_LOG) a log line.

One hook before and one after each request: every hook and every look-up of `flask.g` or
`flask.request` is paid by every till call, so they are read once here."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from server.core.errors import answer_failed_commit
from server.core.extensions import db
from server.core.metrics import observe_request

REQUEST_ID_HEADER = "X-Request-ID"
# Pages run only the scripts and styles they ship (no inline ones) and no other site frames them.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_ACCEPTED_ID = re.compile(r"\A[A-Za-z0-9._:@/+=-]{1,128}\Z")

log = logging.getLogger("loyalty.access")


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (never on a rollback)."""
    g.setdefault("after_commit", []).append(callback)


def _begin() -> None:
    state = g._get_current_object()  # noqa: SLF001 - one proxy look-up instead of three
    incoming = request.headers.get(REQUEST_ID_HEADER)
    state.request_id = (
        incoming if incoming and _ACCEPTED_ID.match(incoming) else os.urandom(16).hex()
    )
    state.started = time.perf_counter()


def _end(response: Response, *, access_log: bool) -> Response:
    """Commit (a success) or roll back (an error), run what waited for the commit, echo the
    request's id, count the request."""
    state = g._get_current_object()  # noqa: SLF001
    status = response.status_code
    if status < 400:  # noqa: PLR2004
        try:
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            response = answer_failed_commit(exc)
            status = response.status_code
        else:
            for callback in state.pop("after_commit", ()):
                callback()
    else:
        db.session.rollback()
    _harden(response)
    response.headers[REQUEST_ID_HEADER] = state.get("request_id", "")
    started = state.get("started")
    if started is not None:
        seconds = time.perf_counter() - started
        observe_request(request.endpoint, request.method, status, seconds)
        if access_log:
            _log_access(status, seconds)
    return response


def _harden(response: Response) -> None:
    """Headers every answer carries: not sniffed, not kept by caches unless it says so (API
    answers and pages hold personal data; static files set their own), and for pages a
    Content-Security-Policy. (The Server header is the server's: gunicorn's names no version,
    nor does server/devserver.py's.)"""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    if response.mimetype == "text/html":
        headers["Content-Security-Policy"] = PAGE_POLICY
        headers["Referrer-Policy"] = "same-origin"


def _log_access(status: int, seconds: float) -> None:
    rule = request.url_rule.rule if request.url_rule is not None else None
    log.info(
        "request",
        extra={
            "method": request.method,
            # the route, not the path: a path can hold a card number or an email
            "route": rule or "(no route)",
            "status": status,
            "ms": round(seconds * 1000, 2),
        },
    )


def register_request_lifecycle(app: Flask, *, access_log: bool) -> None:
    app.before_request(_begin)
    app.after_request(lambda response: _end(response, access_log=access_log))
