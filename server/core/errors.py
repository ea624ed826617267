"""The one place where errors become HTTP responses: RFC 9457 problem+json for the API (and for
any caller that asks for JSON), a short HTML page for a person's browser (web/ replaces it with
its own pages for its blueprints). Every problem carries the request's id, as the response
header X-Request-ID does, so a till's report can be found in the logs."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json, request
from markupsafe import escape
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from webargs.core import is_json
from werkzeug.exceptions import HTTPException

from loyalty import errors as domain
from loyalty.db import unique_violation
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.staff.accounts import SignInRefused
from server.core.jsonbody import InvalidJson

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://loyalty.example/problems/"  # stable identifiers, not fetched

_LOCATIONS = {"json", "query", "path", "headers", "form", "view_args", "querystring"}

STATUS_FOR: list[tuple[type[domain.DomainError], int, str]] = [
    # Most specific first.
    (NotEnoughPoints, 409, "insufficient-points"),
    (SignInRefused, 401, "sign-in-refused"),
    (domain.NotFound, 404, "not-found"),
    (domain.InvalidInput, 422, "invalid-input"),
    (domain.Conflict, 409, "conflict"),
    (domain.RuleViolation, 409, "refused"),
    (domain.InsufficientPoints, 409, "insufficient-points"),
]


def kind_of(status: int) -> str:
    """The problem type of a plain HTTP error: its reason phrase, e.g. `method-not-allowed`."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return phrase.lower().replace(" ", "-").replace("'", "")


def _wants_page() -> bool:
    """A person's browser on a page, not the API or a program asking for JSON."""
    if request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{title}</h1><p>{detail}</p><p><small>Reference: {request_id}</small></p>
<p><a href="/">Back to the start</a></p></main></body></html>
"""


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request_id = g.get("request_id")
    if _wants_page():
        page = _PAGE.format(
            title=escape(title), detail=escape(detail or ""), request_id=escape(request_id or "-")
        )
        response = Response(page, status=status, mimetype="text/html")
    else:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + (kind or kind_of(status)),
            "title": title,
            "status": status,
        }
        if detail:
            body["detail"] = detail
        if errors:
            body["errors"] = errors
        if request_id:
            body["request_id"] = request_id
        response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs nests messages by location and by field; a till wants `field.path: [..]`.

    marshmallow's `_schema` (an object as a whole, e.g. a line that is not an object) is
    reported at the object's own path, and at `_body` for the body itself.
    """
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_body": messages}
    if isinstance(messages, list | dict):
        items = messages.items() if isinstance(messages, dict) else enumerate(messages)
        flat: dict[str, list[str]] = {}
        for key, value in items:
            name = str(key)
            if (not prefix and name in _LOCATIONS) or name == "_schema":
                name = ""
            path = ".".join(p for p in (prefix, name) if p)
            for field, texts in _flatten(value, path).items():
                flat.setdefault(field, []).extend(texts)
        return flat
    return {prefix or "_body": [str(messages)]}


def _domain_error(exc: domain.DomainError) -> Response:
    for cls, status, kind in STATUS_FOR:
        if isinstance(exc, cls):
            errors = exc.errors or None
            return problem(status, exc.title, exc.detail, kind=kind, errors=errors)
    return problem(400, exc.title, exc.detail, kind="bad-request")


_KEPT_HEADERS = {"Retry-After", "Allow"}  # what a 429 and a 405 must say


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = _flatten(data["messages"]) if "messages" in data else None
    detail = exc.description
    if status == 422 and errors:  # noqa: PLR2004
        detail = "the request has invalid fields: see errors"
        if request.content_length and not is_json(request.mimetype):
            detail = "the body was not read: send it as Content-Type: application/json"
    if status == 413:  # noqa: PLR2004
        detail = "the request body is too large"
    headers = dict(data.get("headers") or {})
    headers |= {name: value for name, value in exc.get_headers() if name in _KEPT_HEADERS}
    if status == HTTPStatus.UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", "Bearer")  # RFC 9110 requires a challenge
    kind = "invalid-input" if status == HTTPStatus.UNPROCESSABLE_ENTITY else None
    return problem(status, exc.name, detail, kind=kind, errors=errors, headers=headers)


def _unexpected(exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return problem(
        500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase, "an unexpected error; it has been logged"
    )


def _integrity_error(exc: IntegrityError) -> Response:
    """A unique constraint two racing requests both passed the check of: the one that lost is
    told what is taken (409, the field named), as a single such request is."""
    violation = unique_violation(exc)
    if violation is None or not violation.columns:
        return _unexpected(exc)
    field = violation.columns[-1]
    detail = f"another {violation.table.rstrip('s').replace('_', ' ')} already has this {field}"
    return problem(409, "Already taken", detail, kind="conflict", errors={field: [detail]})


RETRY_AFTER_SECONDS = 2


def unavailable(exc: SQLAlchemyError) -> bool:
    """The database could not be reached or did not answer in time (loyalty.deadlines): the
    request may be sent again, unlike a statement the database refused."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or type(exc).__name__ == "OperationalError"
    return False


def _database_error(exc: SQLAlchemyError) -> Response:
    """503 with Retry-After when the database is unreachable or too slow; a unique violation
    is a 409; anything else the database refused is a 500, logged."""
    if isinstance(exc, IntegrityError):
        return _integrity_error(exc)
    if not unavailable(exc):
        return _unexpected(exc)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    log.warning("database unavailable: %s", reason)
    return problem(
        503,
        HTTPStatus.SERVICE_UNAVAILABLE.phrase,
        "the database is not answering: try again in a moment (a sale retried with the same "
        "external_id is recorded once)",
        kind="database-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def answer_failed_commit(exc: SQLAlchemyError) -> Response:
    """What a request whose commit failed answers (server.core.requests)."""
    return _database_error(exc)


def _invalid_json(exc: InvalidJson) -> Response:
    return problem(
        400,
        HTTPStatus.BAD_REQUEST.phrase,
        exc.detail,
        kind="invalid-json",
        errors={"_body": [exc.detail]},
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(InvalidJson, _invalid_json)
    app.register_error_handler(SQLAlchemyError, _database_error)
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
