"""Phone numbers to E.164 and emails to one spelling, so each contact has one stored form."""

from __future__ import annotations

import re

import phonenumbers

from loyalty.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]{6,24}$")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:  # noqa: PLR2004 - RFC 5321's limit
        raise InvalidInput("not an email address", field="email")
    return email


def looks_like_phone(text: str) -> bool:
    return bool(_PHONE_CHARS.match(text.strip()))


def normalise_phone(phone: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"not a phone number: {exc}", field="phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("not a valid phone number", field="phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_email(email: str | None) -> str | None:
    """What a cashier is shown of an email: enough to ask "is it a…@example.com?"."""
    if email is None:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}**@{domain}"


def mask_phone(phone: str | None) -> str | None:
    """What a cashier is shown of a phone number (E.164): the country code's first digits and
    the last three."""
    if phone is None:
        return None
    return phone[:3] + "*" * max(len(phone) - 6, 0) + phone[-3:]
