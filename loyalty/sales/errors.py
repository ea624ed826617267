from __future__ import annotations

from loyalty.errors import NotFound, RuleViolation


class UnknownSale(NotFound):
    def __init__(self, external_id: str) -> None:
        super().__init__(f"this store has no sale {external_id!r}", field="external_id")


class SaleClosed(RuleViolation):
    title = "Sale already closed"
