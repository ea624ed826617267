from __future__ import annotations

from loyalty.errors import Conflict, NotFound, RuleViolation


class UnknownSale(NotFound):
    def __init__(self, external_id: str) -> None:
        super().__init__(f"this store has no sale {external_id!r}", field="external_id")


class IdempotencyConflict(Conflict):
    title = "Id already used for another request"

    def __init__(self, what: str, external_id: str) -> None:
        super().__init__(
            f"{what} {external_id!r} was already recorded with a different body; "
            "use a new external_id for a new request",
            field="external_id",
        )


class SaleClosed(RuleViolation):
    title = "Sale already closed"
