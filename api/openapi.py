"""What makes the OpenAPI document tell the truth: errors documented as the problem+json that is
sent, each operation's security and its 4xx answers stated by the same decorators that enforce
them, an operationId on every operation."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask import Flask
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields

from api.fields import DecimalString
from loyalty.idempotency import Idempotency
from loyalty.staff.services import Scope
from server.core import auth
from server.core.errors import PROBLEM_BASE
from server.core.jsonbody import StrictJsonParser
from server.core.limits import failed_lookups

View = TypeVar("View", bound=Callable[..., Any])

PROBLEM_JSON = "application/problem+json"

TERMINAL_KEY = "terminalKey"
STAFF_KEY = "staffKey"
SECURITY_SCHEMES = {
    STAFF_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "a staff key (`ls_…`), shown once by `loyalty create-staff-key`, with "
        "scopes; each operation names the scope it needs (`x-staff-scope`)",
    },
    TERMINAL_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "a terminal's key (`lt_…`), shown once by `loyalty create-terminal`; "
        "it belongs to one store",
    },
}


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every error is sent."""

    type = fields.String(
        required=True, metadata={"description": f"a URI under {PROBLEM_BASE}", "format": "uri"}
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    detail = fields.String(metadata={"description": "what went wrong, for a person"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "field path -> messages, e.g. `lines.0.quantity`"},
    )
    request_id = fields.String(
        metadata={"description": "the request's id, as in the X-Request-ID response header"}
    )


class LoyaltyApi(flask_smorest.Api):  # type: ignore[misc]
    ERROR_SCHEMA = ProblemSchema
    # No catch-all `default` answer: each operation lists the errors it can give, and a
    # status it does not list is a defect the fuzzing test reports.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        """Errors are server.core.errors' job, for the API and the pages alike."""

    def _register_pagination_header(self) -> None:
        """Pages here are keyset pages with `next_cursor` in the body: no header, no schema."""

    def _register_responses(self) -> None:
        """Every error response is problem+json (flask-smorest's default is its own shape as
        application/json)."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:  # noqa: PLR2004
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)


def _security(requirement: list[dict[str, list[str]]], scope: Scope | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"security": requirement}
    if scope is not None:
        doc["x-staff-scope"] = scope.value
    return doc


def _annotated(
    view: View,
    *,
    manual: dict[str, Any] | None = None,
    statuses: tuple[int, ...] = (),
    answers: dict[int, Any] | None = None,
) -> View:
    """Add to the documentation flask-smorest keeps on `view` (`_apidoc`), in place: its own
    `doc` and `alt_response` decorators wrap the view once more each, and every wrapper costs
    each request a call (the till's calls carry half a dozen of them). `statuses` are error
    answers (problem+json); `answers` other answers, by status."""
    apidoc = view.__dict__.setdefault("_apidoc", {})
    apidoc.setdefault("manual_doc", {}).update(manual or {})
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    for status in statuses:
        responses.setdefault(status, []).append(http.HTTPStatus(status).name)
    for status, answer in (answers or {}).items():
        responses.setdefault(status, []).append(answer)
    return view


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, with decorators that both enforce and document."""

    ARGUMENTS_PARSER = StrictJsonParser()

    def route(self, rule: str, **options: Any) -> Callable[[View], View]:
        register = super().route(rule, **options)

        def decorator(view: View) -> View:
            # Every operation reads the database (a key is checked there, at the least): one
            # that does not answer in time is a 503 with Retry-After (loyalty.deadlines).
            named = _annotated(
                view, manual={"operationId": f"{self.name}_{view.__name__}"}, statuses=(503,)
            )
            return register(named)  # type: ignore[no-any-return]

        return decorator

    def problems(self, *statuses: int) -> Callable[[View], View]:
        """Document these error answers (problem+json) on the operation."""
        return lambda view: _annotated(view, manual={}, statuses=statuses)

    def replay(self, schema: type[Schema]) -> Callable[[View], View]:
        """Document the 200 a replayed request answers: the first result, in this shape."""
        answer = {
            "schema": schema(),
            "description": "a replay: the first result",
            "content_type": None,
        }
        return lambda view: _annotated(view, answers={200: answer})

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's, and a JSON body's own errors documented: 400 when it is not JSON
        (or not UTF-8), 413 when it is too large."""
        parse = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return parse
        return lambda view: parse(_annotated(view, statuses=(400, 413)))

    def _guarded(
        self, check: Callable[[View], View], doc: dict[str, Any], *statuses: int
    ) -> Callable[[View], View]:
        return lambda view: _annotated(check(view), manual=doc, statuses=statuses)

    def terminal(self) -> Callable[[View], View]:
        """A till's call: a terminal key."""
        return self._guarded(auth.terminal_required, _security([{TERMINAL_KEY: []}], None), 401)

    def staff(self, scope: Scope) -> Callable[[View], View]:
        """A staff call: a staff key with `scope`."""
        return self._guarded(
            auth.staff_required(scope), _security([{STAFF_KEY: []}], scope), 401, 403
        )

    def terminal_or_staff(self, scope: Scope | None = None) -> Callable[[View], View]:
        """Tills and staff both call it; staff need `scope` when one is named."""
        refusals = (401, 403) if scope is not None else (401,)
        return self._guarded(
            auth.terminal_or_staff(scope),
            _security([{TERMINAL_KEY: []}, {STAFF_KEY: []}], scope),
            *refusals,
        )

    def lookup(self) -> Callable[[View], View]:
        """Answers that say "no such card or member" are budgeted per terminal (429 when the
        budget is spent), so codes cannot be guessed."""

        def decorator(view: View) -> View:
            return self.problems(429)(failed_lookups(view))

        return decorator


def idempotency(key: str | None) -> Idempotency | None:
    """The Idempotency-Key header's key, as the caller's own."""
    return None if key is None else Idempotency(owner=auth.owner(), key=key)


def create_api(app: Flask) -> LoyaltyApi:
    app.config.update(
        {
            "API_TITLE": "Loyalty till API",
            "API_VERSION": "v1",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/api",
            "OPENAPI_JSON_PATH": "openapi.json",
            "OPENAPI_SWAGGER_UI_PATH": "docs",
            "OPENAPI_SWAGGER_UI_URL": "/api/docs/static/",  # served from the project, no CDN
            "API_SPEC_OPTIONS": {"components": {"securitySchemes": SECURITY_SCHEMES}},
        }
    )
    api = LoyaltyApi(app)
    api.register_field(DecimalString, "string", "decimal")
    return api
