"""What each outbox template says. A message stores its template's name and a payload; the text
is rendered when it is sent, so a fix to the wording reaches messages still waiting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

POINTS_EXPIRING = "points_expiring"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


class UnknownTemplate(LookupError):
    pass


def _long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _points_expiring(payload: Mapping[str, Any]) -> Rendered:
    points = int(payload["points"])
    last_day = _long_date(date.fromisoformat(str(payload["expires_on"])))
    unit = "point" if points == 1 else "points"
    return Rendered(
        subject=f"{points:,} of your {unit} expire after {last_day}",
        text=(
            f"Hello {payload['name']},\n\n"
            f"{points:,} of your loyalty {unit} can be spent until the end of {last_day}; "
            "after that they expire.\n\n"
            "Show your card at the till to use them.\n"
        ),
    )


TEMPLATES: dict[str, Callable[[Mapping[str, Any]], Rendered]] = {
    POINTS_EXPIRING: _points_expiring,
}


def render(template: str, payload: Mapping[str, Any]) -> Rendered:
    try:
        renderer = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplate(f"no template named {template!r}") from None
    return renderer(payload)
