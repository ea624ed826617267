from __future__ import annotations

from loyalty.errors import InvalidInput, NotFound, RuleViolation


class UnknownCard(NotFound):
    def __init__(self, field: str = "code") -> None:
        super().__init__("no card has this number", field=field)


class DamagedCode(InvalidInput):
    def __init__(self, detail: str, field: str = "code") -> None:
        super().__init__(detail, field=field)


class CardBlocked(RuleViolation):
    title = "Card blocked"

    def __init__(self, reason: str | None) -> None:
        detail = "this card is blocked"
        if reason:
            detail += f" ({reason}); ask for the member's current card or phone number"
        super().__init__(detail, field="code")


class CardNotAvailable(RuleViolation):
    title = "Card cannot be activated"
