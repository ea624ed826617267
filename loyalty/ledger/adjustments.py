"""Manual adjustments: staff add or remove points, with a reason, always audited.

Adding is a credit (a new lot with the program's expiry, paying off any debt first); removing
is a debit through the same conditional UPDATE as a redemption, so staff can never push a
balance below zero, and two adjustments racing for the same points cannot both win.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.errors import InsufficientPoints, InvalidInput
from loyalty.idempotency import Idempotency, once
from loyalty.ledger import services as ledger
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.models import EntryKind
from loyalty.members.services import get_member
from loyalty.program import get_program
from loyalty.results import Outcome

MAX_ADJUSTMENT = 1_000_000
REASON_LENGTH = (3, 200)  # 200: the width of point_entries.reason
ACTOR_WIDTH = 80  # the width of point_entries.actor and audit_log.actor


@dataclass(frozen=True)
class Adjustment:
    entry_id: int
    member_id: int
    points: int
    reason: str
    before: ledger.Balance
    after: ledger.Balance


class CannotOverdraw(InsufficientPoints):
    """Staff cannot create a debt: only a return of points already spent may do that."""

    def __init__(self, member_id: int, wanted: int, available: int) -> None:
        super().__init__(
            f"member {member_id} has {available} points available; removing {wanted} would "
            "leave a debt, which an adjustment may not create",
            field="points",
        )
        self.wanted = wanted
        self.available = available


def _checked_points(points: int) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput("points is a whole number", field="points")
    if points == 0:
        raise InvalidInput("an adjustment adds or removes at least one point", field="points")
    if abs(points) > MAX_ADJUSTMENT:
        raise InvalidInput(
            f"an adjustment changes at most {MAX_ADJUSTMENT:,} points", field="points"
        )
    return points


def _checked_reason(reason: str) -> str:
    text = reason.strip()
    shortest, longest = REASON_LENGTH
    if not shortest <= len(text) <= longest:
        raise InvalidInput(
            f"a reason has {shortest} to {longest} characters (say why, for the audit log)",
            field="reason",
        )
    return text


def adjust_points(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Adjustment:
    """Add (`points` > 0) or remove (`points` < 0) points by hand. Unknown and erased members
    are refused (404); a blocked member's balance can still be corrected."""
    points = _checked_points(points)
    reason = _checked_reason(reason)
    get_member(session, member_id)
    # A staff name may be longer than the column; the `staff:<id>:` prefix identifies them.
    actor = actor[:ACTOR_WIDTH]
    if points > 0:
        posted = ledger.credit(
            session,
            program=get_program(session),
            member_id=member_id,
            points=points,
            kind=EntryKind.ADJUST,
            reason=reason,
            actor=actor,
            now=now,
        )
    else:
        try:
            posted = ledger.redeem(
                session,
                member_id=member_id,
                points=-points,
                reason=reason,
                actor=actor,
                now=now,
                kind=EntryKind.ADJUST,
            )
        except NotEnoughPoints as refused:
            available = ledger.balance(session, member_id).available
            raise CannotOverdraw(member_id, -points, available) from refused
    # Before and after are the balances as the member sees them (matured pending points count
    # as available), read after the UPDATE that changed the account: the row stays locked
    # until commit, so a sale at the same moment cannot slip in between. A removal has already
    # unlocked any matured points; a credit leaves them where they were.
    after = posted.balance
    if after.pending > 0 and points > 0:
        after = ledger.balance_as_of(session, member_id, now)
    before = ledger.Balance(available=after.available - points, pending=after.pending)
    record(
        session,
        actor=actor,
        action="points.adjust",
        subject_type="member",
        subject_id=member_id,
        now=now,
        entry_id=posted.entry_id,
        points=points,
        reason=reason,
        before=asdict(before),
        after=asdict(after),
    )
    session.flush()
    return Adjustment(
        entry_id=posted.entry_id,
        member_id=member_id,
        points=points,
        reason=reason,
        before=before,
        after=after,
    )


def adjust_points_once(
    session: Session,
    idempotency: Idempotency | None,
    *,
    member_id: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Outcome[Adjustment]:
    """`adjust_points`, at most once per idempotency key (loyalty/idempotency.py)."""
    get_member(session, member_id)  # an unknown member is a 404 whether or not a key is sent
    return once(
        session,
        idempotency,
        operation="adjustment",
        # the reason as it is kept (trimmed): a retry that only differs in spaces is the same
        request={"member_id": member_id, "points": points, "reason": reason.strip()},
        result_type=Adjustment,
        run=lambda: adjust_points(
            session, member_id=member_id, points=points, reason=reason, actor=actor, now=now
        ),
        now=now,
        member_of=lambda _adjustment: member_id,
    )
