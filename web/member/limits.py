"""Asking for codes and trying them spend a budget of their own (a FailureBudget, as the till's
sign-in; server/core/limits.py) per email and per address, PER_MINUTE each: every request for
a code counts (each sends an email), and every wrong code. Over budget, even the right code
waits until the window ends."""

from __future__ import annotations

from flask import current_app
from flask.sansio.app import App

from server.core.limits import FailureBudget
from server.core.shared import SharedState

BUDGET = "loyalty.member_sign_in_budget"
PER_MINUTE = 5


def init_budget(app: App) -> None:
    shared: SharedState = app.extensions["loyalty.shared"]
    app.extensions.setdefault(BUDGET, FailureBudget(shared, per_minute=PER_MINUTE))


def _budget() -> FailureBudget:
    budget: FailureBudget = current_app.extensions[BUDGET]
    return budget


def request_keys(email: str, address: str | None) -> tuple[str, str]:
    return f"member-code-request:email:{email}", f"member-code-request:address:{address or '-'}"


def try_keys(email: str, address: str | None) -> tuple[str, str]:
    return f"member-code-try:email:{email}", f"member-code-try:address:{address or '-'}"


def refused(keys: tuple[str, ...]) -> float | None:
    """Seconds to wait when any of the keys is over budget."""
    budget = _budget()
    return max((w for key in keys if (w := budget.refused(key)) is not None), default=None)


def spend(keys: tuple[str, ...]) -> float | None:
    """Count one on every key; the seconds to wait when that spent a budget."""
    budget = _budget()
    waits = [budget.spend(key) for key in keys]
    return max((w for w in waits if w is not None), default=None)
