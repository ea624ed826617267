"""Domain errors. `api/errors.py` maps each family to an HTTP status in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    title = "Request could not be processed"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # field -> messages, for errors that name several fields (a rule's definition...)
        self.errors = errors if errors is not None else ({field: [detail]} if field else {})


class NotFound(DomainError):
    title = "Not found"


class InvalidInput(DomainError):
    """Well-formed input that the domain rejects (bad check digit, forged QR, bad phone...)."""

    title = "Invalid input"


class UnmatchedCode(InvalidInput):
    """Text that is not a valid member's code and that no coupon has either: still a 422, but a
    failed look-up (it could be a guessed coupon code), budgeted like an unknown card."""


class Conflict(DomainError):
    """The request contradicts what is already recorded (an id reused for another body...)."""

    title = "Conflict"


class InsufficientPoints(DomainError):
    title = "Not enough points"


class RuleViolation(DomainError):
    """The request is well formed but a business rule refuses it (a blocked card, a second
    full return...)."""

    title = "Refused by a business rule"


def flatten_messages(
    messages: Any, prefix: str = "", *, whole: str = "_body"
) -> dict[str, list[str]]:
    """A validator's nested messages as {"a.b.c": [message, ...]}; messages about the whole
    object (marshmallow's `_schema`) under `whole`."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = whole if key == "_schema" else str(key)
            flat |= flatten_messages(value, f"{prefix}.{name}" if prefix else name, whole=whole)
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix: list(messages)}
    return {prefix: [str(messages)]}
