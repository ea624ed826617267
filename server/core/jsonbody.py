"""JSON request bodies, read once and strictly. Python's json reads NaN and Infinity (not JSON),
raises a plain ValueError for integers over 4300 digits and RecursionError for deep nesting;
each of these is a 400 with the reason here, never a 500, and the body is parsed once per
request (webargs' parser is told to use this)."""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge


class InvalidJson(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _NotJson(ValueError):
    """NaN and Infinity: Python's json reads them, JSON (RFC 8259) has no such literals."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _reason(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8 text"
    if isinstance(exc, _NotJson):
        return f"the body is not valid JSON: {exc}"
    if isinstance(exc, RecursionError):
        return "the body is nested too deeply to be read"
    return "the body holds a number too long to be read"  # over sys.get_int_max_str_digits()


def loads_strict(body: bytes) -> Any:
    try:
        return json.loads(body.decode(), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(_reason(exc)) from exc


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies with `loads_strict`. An empty body is left
    to the schema, which then names each missing field. A query string is held to its schema
    too (an unknown parameter is a 422, as an unknown field is), headers are not."""

    DEFAULT_UNKNOWN_BY_LOCATION = {  # noqa: RUF012 - webargs reads this class attribute
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        limit = req.max_content_length
        if req.content_length is None and limit is not None and len(body) >= limit:
            # A chunked body (no Content-Length) is read up to the limit and no further: one
            # that reached it may have been cut short, so it is refused whole.
            raise RequestEntityTooLarge
        return loads_strict(body)
