"""What the workers share in Redis: the failed look-up budget and which members each till has
identified lately. Redis is a help here, never a dependency of the till: every call has a short
timeout, and when Redis does not answer the process keeps the same state in its own memory
(each worker on its own) and leaves Redis alone for a few seconds before asking again, so a
frozen or stopped Redis costs a till call at most one short timeout, not one per call.

An outage is logged once when it starts (one line, no traceback) and once when Redis answers
again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from cachetools import TTLCache
from redis import Redis

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0
# How long a till may read a member it identified by a code (and who is not enrolled at its
# store): the length of a visit to the shop, with margin.
SIGHTING_SECONDS = 3600


class SharedState:
    """Redis when it is configured and answers; `fallback` otherwise."""

    def __init__(self, url: str | None, *, timeout: float) -> None:
        self.client: Redis[bytes] | None = (
            Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            if url
            else None
        )
        self._down_until = 0.0
        self._down = False

    @property
    def configured(self) -> bool:
        return self.client is not None

    def run(self, call: Callable[[Redis[bytes]], T], fallback: Callable[[], T]) -> T:
        if self.client is None or time.monotonic() < self._down_until:
            return fallback()
        try:
            result = call(self.client)
        except Exception as exc:  # noqa: BLE001 - any failure of Redis means the fallback
            self._failed(exc)
            return fallback()
        if self._down:
            self._down = False
            log.info("Redis answers again: limits and sightings are shared by the workers")
        return result

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
        if not self._down:
            self._down = True
            log.warning(
                "Redis does not answer (%s: %s): each worker keeps limits and sightings "
                "in its own memory until it does",
                type(exc).__name__,
                exc,
            )


class Sightings:
    """Members a terminal identified by a code lately (SIGHTING_SECONDS): what lets a till read
    a member who is not enrolled at its store."""

    def __init__(self, shared: SharedState, seconds: int = SIGHTING_SECONDS) -> None:
        self.shared = shared
        self.seconds = seconds
        self.local: TTLCache[str, bool] = TTLCache(maxsize=100_000, ttl=seconds)

    @staticmethod
    def _key(terminal_id: int, member_id: int) -> str:
        return f"loyalty:seen:{terminal_id}:{member_id}"

    def remember(self, terminal_id: int, member_id: int) -> None:
        key = self._key(terminal_id, member_id)
        if key in self.local:
            return
        self.local[key] = True
        self.shared.run(lambda redis: redis.set(key, 1, ex=self.seconds), lambda: None)

    def seen(self, terminal_id: int, member_id: int) -> bool:
        key = self._key(terminal_id, member_id)
        if key in self.local:
            return True
        return self.shared.run(lambda redis: bool(redis.exists(key)), lambda: False)
