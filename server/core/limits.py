"""Rate limits on guessing. Anything that answers "no such card, member or coupon" (or "this
code is forged") could be used to guess, so failed look-ups of every kind share one budget per
terminal (per staff key, or per address for other callers):
`LOYALTY_IDENTIFY_FAILURES_PER_MINUTE`, kept in Redis when it answers so that every worker
shares it, else in the process (server/core/shared.py).

Only failures count, and only a failure asks the store: a look-up that succeeds costs nothing.
The failure that spends the budget is answered 429 instead of 404/422, with Retry-After; the
process then remembers the caller is over budget until the window ends and refuses its typed
codes and reads by id before reading anything, without asking the store again. A scanned QR
code still goes through (limit the failures, not the till): its signature cannot be guessed,
and one that fails is answered 429 like the rest. Built on `limits`, the library
Flask-Limiter itself stands on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse, storage, strategies
from werkzeug.exceptions import HTTPException, TooManyRequests

from loyalty.cards.errors import DamagedCode
from loyalty.cards.qr import looks_like_payload
from loyalty.errors import DomainError, NotFound, UnmatchedCode
from server.core.shared import SharedState

View = TypeVar("View", bound=Callable[..., Any])


class FailureBudget:
    def __init__(self, shared: SharedState, per_minute: int) -> None:
        self.item: RateLimitItem = parse(f"{per_minute}/minute")
        self.shared = shared
        self.local = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
        self.remote = (
            strategies.FixedWindowRateLimiter(
                storage.RedisStorage("redis://", connection_pool=shared.client.connection_pool)
            )
            if shared.client is not None
            else None
        )
        self.blocked_until: dict[str, float] = {}

    def refused(self, key: str) -> float | None:
        """Seconds until `key` may look up again, when this process knows it is over budget."""
        until = self.blocked_until.get(key)
        if until is None:
            return None
        left = until - time.time()
        if left <= 0:
            del self.blocked_until[key]
            return None
        return left

    def _spend_on(self, limiter: strategies.FixedWindowRateLimiter, key: str) -> float | None:
        if limiter.hit(self.item, key):
            return None
        return float(limiter.get_window_stats(self.item, key).reset_time)

    def spend(self, key: str) -> float | None:
        """Count one failure; the seconds to wait when that spent the budget."""
        remote = self.remote
        reset = (
            self.shared.run(
                lambda _: self._spend_on(remote, key), lambda: self._spend_on(self.local, key)
            )
            if remote is not None
            else self._spend_on(self.local, key)
        )
        if reset is None:
            return None
        self.blocked_until[key] = reset
        return max(reset - time.time(), 1.0)


def init_limits(app: Flask, shared: SharedState, *, per_minute: int) -> None:
    app.extensions["loyalty.failure_budget"] = FailureBudget(shared, per_minute)


def _key() -> str:
    caller = g.get("caller")
    if caller is not None:
        return f"{'terminal' if g.get('terminal') else 'staff'}:{caller.id}"
    return request.remote_addr or "unknown"


def _too_many(seconds: float) -> TooManyRequests:
    return TooManyRequests(
        description="too many failed look-ups from this till: wait before trying again",
        retry_after=int(seconds) + 1,
    )


def _is_failed_lookup(exc: Exception) -> bool:
    """Unknown (a card, a member, a coupon, a sale) or forged: what a guess is answered."""
    if isinstance(exc, HTTPException):
        return exc.code == 404  # noqa: PLR2004
    return isinstance(exc, NotFound | DamagedCode | UnmatchedCode)


def _scanned() -> bool:
    """Whether the request carries a QR payload (what a scanner reads, not what a person types)
    and no coupon code (typed, so possibly guessed)."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or body.get("coupon_codes"):
        return False
    code = body.get("code")
    return isinstance(code, str) and looks_like_payload(code.strip())


def failed_lookups(view: View) -> View:
    """Budget the failures of this view (see the module's docstring)."""

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budget: FailureBudget = current_app.extensions["loyalty.failure_budget"]
        key = _key()
        wait = budget.refused(key)
        if wait is not None and not _scanned():
            raise _too_many(wait)
        try:
            return view(*args, **kwargs)
        except (DomainError, HTTPException) as exc:
            if _is_failed_lookup(exc):
                wait = budget.spend(key)
                if wait is not None:
                    raise _too_many(wait) from exc
            raise

    return limited  # type: ignore[return-value]


def unknown_coupons(outcomes: Iterable[Any], member_id: int | None, *, refuse: bool) -> None:
    """Count each coupon code a basket carried that matched no coupon as a failed look-up, for
    the caller and for the member it was tried for (codes are guessed through baskets too).
    With `refuse` (a quote), the basket that spends a budget is answered 429; a committed sale
    is answered, and the caller's next look-ups wait."""
    unknown = sum(1 for outcome in outcomes if outcome.reason == "unknown")
    if not unknown:
        return
    budget: FailureBudget = current_app.extensions["loyalty.failure_budget"]
    keys = [_key()] + ([f"member:{member_id}"] if member_id is not None else [])
    waits = [budget.spend(key) for _ in range(unknown) for key in keys]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None and refuse:
        raise _too_many(wait)
