"""The one place where errors become HTTP responses, as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException, InternalServerError

from loyalty import errors as domain
from loyalty.ledger.errors import NotEnoughPoints

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://loyalty.example/problems/"  # stable identifiers, not fetched

STATUS_FOR: list[tuple[type[domain.DomainError], int, str]] = [
    # Most specific first.
    (NotEnoughPoints, 409, "insufficient-points"),
    (domain.NotFound, 404, "not-found"),
    (domain.InvalidInput, 422, "invalid-input"),
    (domain.Conflict, 409, "conflict"),
    (domain.Forbidden, 403, "forbidden"),
    (domain.RuleViolation, 409, "refused"),
    (domain.InsufficientPoints, 409, "insufficient-points"),
]


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str = "about:blank",
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": kind if kind == "about:blank" else PROBLEM_BASE + kind,
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs nests messages by location and by field; a till wants `field.path: [..]`."""
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "_body": messages}
        flat: dict[str, list[str]] = {}
        for index, item in enumerate(messages):
            flat |= _flatten(item, f"{prefix}.{index}" if prefix else str(index))
        return flat
    if isinstance(messages, dict):
        flat = {}
        for key, value in messages.items():
            name = str(key)
            if not prefix and name in {"json", "query", "path", "headers", "form"}:
                name = ""
            path = ".".join(p for p in (prefix, name) if p)
            flat |= _flatten(value, path)
        return flat
    return {prefix or "_body": [str(messages)]}


def _domain_error(exc: domain.DomainError) -> Response:
    for cls, status, kind in STATUS_FOR:
        if isinstance(exc, cls):
            errors = {exc.field: [exc.detail]} if exc.field else None
            return problem(status, exc.title, exc.detail, kind=kind, errors=errors)
    return problem(400, exc.title, exc.detail, kind="bad-request")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = _flatten(data["messages"]) if "messages" in data else None
    detail = exc.description
    if status == 422 and errors:  # noqa: PLR2004
        detail = "the request has invalid fields: see errors"
    if status == 413:  # noqa: PLR2004
        detail = "the request body is too large"
    headers = dict(data.get("headers") or {})
    if getattr(exc, "response", None) is not None and exc.response is not None:
        headers |= {k: v for k, v in exc.response.headers.items() if k == "Retry-After"}
    return problem(status, exc.name, detail, errors=errors, headers=headers)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, InternalServerError.name, "an unexpected error; it has been logged")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
