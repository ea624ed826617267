"""Domain errors as the till shows them: a heading in the page's language, then the domain's
own message, and the HTTP status the API answers the same error with (server.core.errors)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from loyalty.cards.errors import CardBlocked, DamagedCode, UnknownCard
from loyalty.errors import Conflict, DomainError, InvalidInput, NotFound, UnmatchedCode
from loyalty.members.errors import MemberBlocked, UnknownMember
from loyalty.sales.errors import SaleClosed, UnknownSale
from server.core.errors import STATUS_FOR


@dataclass(frozen=True)
class Problem:
    heading: str
    detail: str
    status: int


def _heading(exc: DomainError) -> str:
    # Most specific first.
    headings: list[tuple[type[DomainError], str]] = [
        (UnknownCard, _("Unknown card")),
        (UnknownMember, _("Unknown member")),
        (UnknownSale, _("Unknown sale")),
        (DamagedCode, _("Damaged or forged code")),
        (UnmatchedCode, _("Nothing matches this code")),
        (CardBlocked, _("Card blocked")),
        (MemberBlocked, _("Member blocked")),
        (SaleClosed, _("Sale already closed")),
        (NotFound, _("Not found")),
        (InvalidInput, _("Not accepted")),
        (Conflict, _("Already recorded otherwise")),
    ]
    return next((text for kind, text in headings if isinstance(exc, kind)), _("Refused"))


def problem_of(exc: DomainError) -> Problem:
    status = next((status for kind, status, _kind in STATUS_FOR if isinstance(exc, kind)), 400)
    return Problem(_heading(exc), exc.detail, status)
