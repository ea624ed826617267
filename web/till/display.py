"""Amounts as the cashier reads them: minor units (integers everywhere else) shown in the
program's currency, with its precision and the page's locale."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import get_currency_precision
from flask_babel import format_currency


def money(amount: int, currency: str) -> str:
    return str(format_currency(Decimal(amount).scaleb(-get_currency_precision(currency)), currency))
