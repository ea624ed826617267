"""What a till may read of members: only those it has a reason to (enrolled at its store, or
identified at this terminal by a code lately), and only what a cashier needs of them (masked
contacts, no QR payloads). Staff with the `members` scope read everything; they pass no
viewer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TillViewer:
    """A terminal asking about members. The server fills in how it remembers whom the terminal
    identified (shared by the workers, for an hour) and how to find where a member enrolled."""

    store_id: int
    identified: Callable[[int], bool]  # this terminal identified the member by a code lately
    remember: Callable[[int], None]  # ...it just has
    enrolled_store_of: Callable[[int], int | None]

    def sees(self, member_id: int, enrolled_store_id: int | None) -> bool:
        return enrolled_store_id == self.store_id or self.identified(member_id)

    def sees_member(self, member_id: int) -> bool:
        return self.identified(member_id) or self.enrolled_store_of(member_id) == self.store_id

    def met(self, member_id: int, enrolled_store_id: int | None) -> None:
        """The till identified this member by a code: it may read them for a while."""
        if enrolled_store_id != self.store_id:
            self.remember(member_id)
