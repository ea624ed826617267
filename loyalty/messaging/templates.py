"""What each outbox template says. A message stores its template's name and a payload; the text
is rendered when it is sent, so a fix to the wording reaches messages still waiting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

POINTS_EXPIRING = "points_expiring"
MEMBER_SIGN_IN_CODE = "member_sign_in_code"


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


def _member_sign_in_code(payload: Mapping[str, Any]) -> Rendered:
    minutes = int(payload["minutes"])
    return Rendered(
        subject=f"Your sign-in code: {payload['code']}",
        text=(
            f"Hello {payload['name']},\n\n"
            f"Your code to sign in to your loyalty page is {payload['code']}. "
            f"It works once, for {minutes} minutes.\n\n"
            "If you did not ask for it, ignore this email: nobody can sign in without the code.\n"
        ),
    )


TEMPLATES: dict[str, Callable[[Mapping[str, Any]], Rendered]] = {
    POINTS_EXPIRING: _points_expiring,
    MEMBER_SIGN_IN_CODE: _member_sign_in_code,
}


def render(template: str, payload: Mapping[str, Any]) -> Rendered:
    try:
        renderer = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplate(f"no template named {template!r}") from None
    return renderer(payload)
