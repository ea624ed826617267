"""Field types every concept's schemas share. Requests refuse unknown fields; integers and
booleans are strict (no "5", no 5.0, no "yes") and bounded, and text holds no control
characters, so absurd input is a 422 with a reason and never reaches the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from loyalty.db import MAX_ID
from loyalty.idempotency import CLIENT_ID

CLIENT_ID_ERROR = "Printable ASCII without spaces."

MAX_MINOR_UNITS = 10**10  # 100 million in a two-decimal currency: no till sells a line dearer
MAX_QUANTITY = 10_000
MAX_LINES = 500
MAX_POINTS = 10**9
# A till's clock set to 1970 or to the year 9999 is a mistake; 9999 with a negative offset
# cannot even be expressed in UTC.
EARLIEST_SALE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_SALE = datetime(9999, 1, 1, tzinfo=UTC)

# NUL and lone surrogates cannot be stored (PostgreSQL refuses NUL, neither database takes a
# surrogate that is not UTF-8); the other C0 controls are never meant. Tab and line breaks are
# allowed: a scanner in keyboard-wedge mode ends a code with one.
_FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class Text(fields.String):
    """A string that a database can store: no NUL, no other control characters but tab and
    line breaks, no lone surrogates."""

    default_error_messages = {  # noqa: RUF012 - marshmallow merges this class attribute
        "characters": "Contains a control character or an invalid code point.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _FORBIDDEN_CHARACTERS.search(text):
            raise self.make_error("characters")
        return text


class StrictBoolean(fields.Boolean):
    """JSON `true` or `false` only: a consent is never inferred from "yes", "on" or 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True and value is not False:
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class DecimalString(fields.Decimal):
    """A decimal sent as a string ("0.1250"), never as a float; documented as such."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(as_string=True, **kwargs)


def external_id_field(**kwargs: Any) -> fields.String:
    return Text(
        required=True,
        validate=[
            validate.Length(min=1, max=64),
            validate.Regexp(CLIENT_ID, error=CLIENT_ID_ERROR),
        ],
        metadata={"description": "the till's own id: printable ASCII, no spaces"},
        **kwargs,
    )


def positive_id(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class IdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # every other header

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=[
            validate.Length(min=1, max=64),
            validate.Regexp(CLIENT_ID, error=CLIENT_ID_ERROR),
        ],
        metadata={
            "description": "makes a retry safe: the same key and body answer with the first "
            "result (200) instead of doing it again; the same key with another body is a 409; "
            "printable ASCII, no spaces, 1-64. Keys belong to the key that sent them."
        },
    )


class PageQuerySchema(StrictSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
