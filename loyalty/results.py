"""Results kept as JSON and read back into their frozen dataclasses: what lets a replayed
request (a sale, a return, an enrolment with an Idempotency-Key) answer exactly what the first
one answered. cattrs does both directions; nothing is lost either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import cattrs

T = TypeVar("T")

_converter = cattrs.Converter()
_converter.register_structure_hook(datetime, lambda value, _type: datetime.fromisoformat(value))
_converter.register_unstructure_hook(datetime, datetime.isoformat)
_converter.register_structure_hook(date, lambda value, _type: date.fromisoformat(value))
_converter.register_unstructure_hook(date, date.isoformat)


# dataclasses as plain dicts and lists, values as they are (datetimes stay datetimes): what
# dataclasses.asdict gives, at a fraction of its cost (asdict deep-copies every leaf)
_plain = cattrs.Converter()
_plain.register_unstructure_hook(datetime, lambda value: value)
_plain.register_unstructure_hook(date, lambda value: value)


def plain(value: Any) -> Any:
    return _plain.unstructure(value)


def stored(result: Any) -> dict[str, Any]:
    """A result as JSON-ready data."""
    data: dict[str, Any] = _converter.unstructure(result)
    return data


def restored(data: dict[str, Any], kind: type[T]) -> T:
    return _converter.structure(data, kind)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a request that may be replayed answers: the result, and whether this call made it
    (False: a replay, answered with the first result)."""

    result: T
    created: bool
