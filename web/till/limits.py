"""Failed sign-ins spend the failed look-up budget (server/core/limits.py) per username and per
address: a guesser is slowed whichever of the two it varies. Over budget, even the right
password waits until the window ends, so the budget cannot be used to tell a right guess."""

from __future__ import annotations

from flask import current_app

from loyalty.cards.errors import DamagedCode
from loyalty.cards.qr import looks_like_payload
from loyalty.errors import NotFound, UnmatchedCode
from server.core.limits import FailureBudget


def _budget() -> FailureBudget:
    budget: FailureBudget = current_app.extensions["loyalty.failure_budget"]
    return budget


def keys_for(username: str, address: str | None) -> tuple[str, str]:
    return f"till-sign-in:user:{username}", f"till-sign-in:address:{address or 'unknown'}"


def refused(keys: tuple[str, ...]) -> float | None:
    """Seconds to wait when any of the keys is over budget."""
    budget = _budget()
    return max((w for key in keys if (w := budget.refused(key)) is not None), default=None)


def spend(keys: tuple[str, ...]) -> float | None:
    """Count one failed sign-in on every key; the seconds to wait when that spent a budget."""
    budget = _budget()
    waits = [budget.spend(key) for key in keys]
    return max((w for w in waits if w is not None), default=None)


# Look-ups at the till (a scan, a coupon code typed into the basket) share the budget the API
# gives each terminal, here per signed-in account: a cashier cannot guess cards or coupon codes
# through the page any faster than through the API.


def lookup_key(account_id: int) -> str:
    return f"till-web:account:{account_id}"


def is_failed_lookup(exc: Exception) -> bool:
    """Unknown (a card, a member, a coupon) or forged: what a guess is answered."""
    return isinstance(exc, NotFound | DamagedCode | UnmatchedCode)


def lookup_refused(account_id: int, code: str) -> float | None:
    """Seconds to wait before this account looks up again; a scanned QR payload still goes
    through (its signature cannot be guessed), as in the API."""
    if looks_like_payload(code.strip()):
        return None
    return _budget().refused(lookup_key(account_id))


def spend_lookup(account_id: int, member_id: int | None = None, times: int = 1) -> float | None:
    """Count failed look-ups for the account (and the member a coupon was tried for)."""
    keys = [lookup_key(account_id)] + ([f"member:{member_id}"] if member_id is not None else [])
    budget = _budget()
    waits = [budget.spend(key) for _ in range(times) for key in keys]
    return max((w for w in waits if w is not None), default=None)
