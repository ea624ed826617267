"""Failed sign-ins spend the failed look-up budget (server/core/limits.py) per username and per
address: a guesser is slowed whichever of the two it varies. Over budget, even the right
password waits until the window ends, so the budget cannot be used to tell a right guess."""

from __future__ import annotations

from flask import current_app

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
