"""Configuration read once per process and version: rules and tiers.

DESIGN.md forbids in-memory state that matters across requests. This is not such state: every
sale reads the program row, which carries `config_version`, a random token replaced whenever a
rule or tier changes; what a process keeps is keyed by that token (and by the database), so it
is used only while the database says it is current, and no other process or rollback can make
a stale copy look current (a token is never reused).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")


class VersionedCache(Generic[T]):
    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, version: str, load: Callable[[], T]) -> T:
        key = (session.connection().engine.url.render_as_string(), version)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = load()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
