from __future__ import annotations

from loyalty.errors import InvalidInput, NotFound, RuleViolation


class UnknownCard(NotFound):
    def __init__(self) -> None:
        super().__init__("no card has this number", field="code")


class DamagedCode(InvalidInput):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="code")


class CardBlocked(RuleViolation):
    title = "Card blocked"

    def __init__(self, reason: str | None) -> None:
        detail = "this card is blocked"
        if reason:
            detail += f" ({reason}); ask for the member's current card or phone number"
        super().__init__(detail, field="code")


class CardNotAvailable(RuleViolation):
    title = "Card cannot be activated"
