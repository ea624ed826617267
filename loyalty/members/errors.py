from __future__ import annotations

from loyalty.errors import Conflict, NotFound, RuleViolation


class UnknownMember(NotFound):
    def __init__(self, detail: str = "no member matches", field: str | None = None) -> None:
        super().__init__(detail, field=field)


class ContactTaken(Conflict):
    title = "Contact already registered"


class MemberBlocked(RuleViolation):
    title = "Member blocked"

    def __init__(self) -> None:
        super().__init__("this member's account is blocked; refer them to customer service")
