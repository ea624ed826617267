"""Card numbers: 16 digits, the last a Luhn check digit, the rest random so none can be guessed."""

from __future__ import annotations

import re
import secrets

CARD_NUMBER_LENGTH = 16
_SEPARATORS = re.compile(r"[\s-]")


def is_ascii_digits(text: str) -> bool:
    # str.isdigit() also accepts superscripts and Arabic-Indic digits, which are no card number.
    return text.isascii() and text.isdigit()


def luhn_check_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # doubled: these sit at odd places once the check digit is appended
            digit *= 2
            if digit > 9:  # noqa: PLR2004 - the Luhn rule subtracts 9 from two-digit doubles
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid_card_number(number: str) -> bool:
    return (
        len(number) == CARD_NUMBER_LENGTH
        and is_ascii_digits(number)
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def new_card_number() -> str:
    # A leading 9 keeps numbers clear of payment-card ranges (ISO/IEC 7812: 9 is national use)
    body = "9" + "".join(secrets.choice("0123456789") for _ in range(CARD_NUMBER_LENGTH - 2))
    return body + luhn_check_digit(body)


def strip_separators(text: str) -> str:
    return _SEPARATORS.sub("", text)


def format_card_number(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def masked_card_number(number: str) -> str:
    """What a cashier is shown of a card's number: its last four digits."""
    return format_card_number("*" * (len(number) - 4) + number[-4:])
