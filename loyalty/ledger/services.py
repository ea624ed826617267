"""Every change to a balance goes through here.

Invariants kept in the same transaction as each entry (and checked by `check_ledger`):
- account.available == sum(entry.points) and account.pending == sum(entry.pending_points);
- the unlocked lots' remaining points add up to max(available, 0) (a negative balance is a debt
  that no lot holds), the locked lots' to `pending`.

The account row is updated first with a single conditional UPDATE. On PostgreSQL that row lock
serialises everything else done to the member's lots in the transaction; on SQLite the database
write lock does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from loyalty.db import UtcDateTime
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.expiry import lot_expiry
from loyalty.ledger.models import EntryKind, LotDraw, PointAccount, PointEntry, PointLot
from loyalty.program import ProgramSettings


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int


@dataclass(frozen=True)
class Posted:
    """An entry written, and the member's balance right after it."""

    entry_id: int
    balance: Balance


# The till's hot path writes with Core statements built once, on the tables, executed on the
# session's connection: the ORM's unit of work, and building a statement per call, cost more
# CPU than the database spends on these small rows. Lots are never handled as ORM objects, so
# no stale copy of one can sit in a session's identity map.
_accounts = cast("Table", PointAccount.__table__)
_entries = cast("Table", PointEntry.__table__)
_lots = cast("Table", PointLot.__table__)
_BALANCE = (_accounts.c.available, _accounts.c.pending)
_OPEN_ACCOUNT = insert(_accounts)
_READ_BALANCE = select(*_BALANCE).where(_accounts.c.member_id == bindparam("member_id"))
_INSERT_ENTRY = insert(_entries).returning(_entries.c.id)
_INSERT_LOT = insert(_lots)
_MOVE_LOT_POINTS = (
    update(_lots)
    .where(_lots.c.id == bindparam("lot_id"))
    .values(remaining=_lots.c.remaining + bindparam("delta", type_=BigInteger))
)
_INSERT_DRAW = insert(cast("Table", LotDraw.__table__))
_SHIFT_AVAILABLE = (
    update(_accounts)
    .where(_accounts.c.member_id == bindparam("member"))
    .values(
        available=_accounts.c.available + bindparam("delta", type_=BigInteger),
        updated_at=bindparam("changed_at", type_=UtcDateTime()),
    )
    .returning(*_BALANCE)
)
_DEBIT_IF_AVAILABLE = (
    update(_accounts)
    .where(
        _accounts.c.member_id == bindparam("member"),
        _accounts.c.available >= bindparam("points", type_=BigInteger),
    )
    .values(
        available=_accounts.c.available - bindparam("points", type_=BigInteger),
        updated_at=bindparam("changed_at", type_=UtcDateTime()),
    )
    .returning(*_BALANCE)
)


def open_account(session: Session, member_id: int, now: datetime) -> None:
    session.connection().execute(
        _OPEN_ACCOUNT, {"member_id": member_id, "available": 0, "pending": 0, "updated_at": now}
    )


def balance(session: Session, member_id: int) -> Balance:
    row = session.connection().execute(_READ_BALANCE, {"member_id": member_id}).one()
    return Balance(available=row.available, pending=row.pending)


def _add_entry(
    session: Session,
    *,
    member_id: int,
    kind: EntryKind,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
    sale_id: int | None = None,
) -> int:
    params = {
        "member_id": member_id,
        "kind": kind.value,
        "points": points,
        "pending_points": 0,
        "sale_id": sale_id,
        "reason": reason,
        "actor": actor,
        "created_at": now,
    }
    return int(session.connection().execute(_INSERT_ENTRY, params).scalar_one())


def _shift_available(session: Session, member_id: int, delta: int, now: datetime) -> Balance:
    """Apply a signed change and return the new balance, in one statement."""
    row = (
        session.connection()
        .execute(_SHIFT_AVAILABLE, {"member": member_id, "delta": delta, "changed_at": now})
        .one()
    )
    return Balance(available=row.available, pending=row.pending)


def credit(
    session: Session,
    *,
    program: ProgramSettings,
    member_id: int,
    points: int,
    kind: EntryKind,
    reason: str,
    actor: str,
    now: datetime,
    sale_id: int | None = None,
    earned_at: datetime | None = None,
) -> Posted:
    """Add points as a new lot. A debt is paid off first: the lot holds only what is left.
    `earned_at` (when the sale happened, for a till that was offline) decides the expiry."""
    if points <= 0:
        msg = "a credit adds a positive number of points"
        raise ValueError(msg)
    after = _shift_available(session, member_id, points, now)
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=kind,
        points=points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    session.connection().execute(
        _INSERT_LOT,
        {
            "member_id": member_id,
            "entry_id": entry_id,
            "sale_id": sale_id,
            "points": points,
            "remaining": min(points, max(after.available, 0)),
            "unlocked": True,
            "unlocks_at": now,
            "expires_at": lot_expiry(program, earned_at or now),
            "created_at": now,
        },
    )
    return Posted(entry_id, after)


def _draw_lots(
    session: Session, *, member_id: int, entry_id: int, points: int, own_sale_id: int | None
) -> None:
    """Take `points` from unlocked lots, soonest expiry first (a sale's own lot first when a
    return takes back what that sale earned), recording each draw."""
    order: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = []
    if own_sale_id is not None:
        order.append(case((PointLot.sale_id == own_sale_id, 0), else_=1))
    # Lots that never expire go last; NULLS LAST is spelt differently per database.
    order += [case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id]
    lots = session.connection().execute(
        select(PointLot.id, PointLot.remaining)
        .where(
            PointLot.member_id == member_id,
            PointLot.unlocked.is_(True),
            PointLot.remaining > 0,
        )
        .order_by(*order)
    )
    draws: list[dict[str, int]] = []
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        taken = min(remaining, left)
        left -= taken
        draws.append({"lot_id": lot_id, "points": taken})
    _move_lot_points(session, entry_id, draws, sign=-1)


def _move_lot_points(
    session: Session, entry_id: int, moves: list[dict[str, int]], *, sign: int
) -> None:
    """Take (sign -1) or give back (sign +1) points on lots, each in one statement."""
    if not moves:
        return
    connection = session.connection()
    connection.execute(
        _MOVE_LOT_POINTS, [{"lot_id": m["lot_id"], "delta": sign * m["points"]} for m in moves]
    )
    if sign < 0:
        connection.execute(_INSERT_DRAW, [{"entry_id": entry_id, **move} for move in moves])


def redeem(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
    sale_id: int | None = None,
    kind: EntryKind = EntryKind.REDEEM,
) -> Posted:
    """Spend points (or remove them: `kind` adjust). The balance check and the debit are one
    conditional UPDATE, so two tills racing for the same points cannot both win."""
    if points <= 0:
        msg = "a redemption spends a positive number of points"
        raise ValueError(msg)
    debited = (
        session.connection()
        .execute(_DEBIT_IF_AVAILABLE, {"member": member_id, "points": points, "changed_at": now})
        .first()
    )
    if debited is None:
        raise NotEnoughPoints(points)
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=kind,
        points=-points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    _draw_lots(session, member_id=member_id, entry_id=entry_id, points=points, own_sale_id=None)
    return Posted(entry_id, Balance(debited.available, debited.pending))


def reverse_earning(
    session: Session,
    *,
    member_id: int,
    points: int,
    sale_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Posted:
    """Take back points a sale earned, from that sale's lot first. If the member has spent them
    already the balance goes negative: the points are owed, never silently forgiven."""
    after = _shift_available(session, member_id, -points, now)
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=-points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    from_lots = min(points, max(after.available + points, 0))
    if from_lots:
        _draw_lots(
            session,
            member_id=member_id,
            entry_id=entry_id,
            points=from_lots,
            own_sale_id=sale_id,
        )
    return Posted(entry_id, after)


def reverse_redemption(
    session: Session,
    *,
    redemption_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Posted:
    """Give back redeemed points to the very lots they came from (same expiry as before)."""
    member_id, spent, sale_id = session.execute(
        select(PointEntry.member_id, PointEntry.points, PointEntry.sale_id).where(
            PointEntry.id == redemption_id, PointEntry.kind == EntryKind.REDEEM
        )
    ).one()
    points = -spent
    after = _shift_available(session, member_id, points, now)
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    # A debt is paid before any lot is refilled, so that lots keep adding up to the balance.
    refill = min(points, max(after.available, 0))
    draws = session.execute(
        select(LotDraw.lot_id, LotDraw.points)
        .join(PointLot, PointLot.id == LotDraw.lot_id)
        .where(LotDraw.entry_id == redemption_id)
        .order_by(PointLot.expires_at.desc(), LotDraw.id.desc())
    )
    refills: list[dict[str, int]] = []
    for lot_id, drawn in draws:
        if refill == 0:
            break
        given = min(drawn, refill)
        refill -= given
        refills.append({"lot_id": lot_id, "points": given})
    _move_lot_points(session, entry_id, refills, sign=+1)
    return Posted(entry_id, after)


def history(
    session: Session, member_id: int, *, before_id: int | None, limit: int
) -> list[PointEntry]:
    """Newest first; pass the last id seen as `before_id` for the next page (keyset paging,
    so a page stays cheap however long the history)."""
    query = select(PointEntry).where(PointEntry.member_id == member_id)
    if before_id is not None:
        query = query.where(PointEntry.id < before_id)
    return list(session.scalars(query.order_by(PointEntry.id.desc()).limit(limit)))


@dataclass(frozen=True)
class LedgerDiscrepancy:
    member_id: int
    problem: str


def check_ledger(session: Session) -> list[LedgerDiscrepancy]:
    """Set-based: one query per invariant, whatever the number of members."""
    problems: list[LedgerDiscrepancy] = []
    entry_sums = (
        select(
            PointEntry.member_id.label("member_id"),
            func.sum(PointEntry.points).label("points"),
            func.sum(PointEntry.pending_points).label("pending"),
        )
        .group_by(PointEntry.member_id)
        .subquery()
    )
    mismatched_entries = session.execute(
        select(
            PointAccount.member_id,
            PointAccount.available,
            PointAccount.pending,
            func.coalesce(entry_sums.c.points, 0),
            func.coalesce(entry_sums.c.pending, 0),
        )
        .outerjoin(entry_sums, entry_sums.c.member_id == PointAccount.member_id)
        .where(
            (PointAccount.available != func.coalesce(entry_sums.c.points, 0))
            | (PointAccount.pending != func.coalesce(entry_sums.c.pending, 0))
        )
    )
    for member_id, available, pending, entries, entries_pending in mismatched_entries:
        problems.append(
            LedgerDiscrepancy(
                member_id,
                f"balance available={available} pending={pending} but entries say "
                f"available={entries} pending={entries_pending}",
            )
        )
    lot_sums = (
        select(
            PointLot.member_id.label("member_id"),
            func.sum(case((PointLot.unlocked.is_(True), PointLot.remaining), else_=0)).label(
                "unlocked"
            ),
            func.sum(case((PointLot.unlocked.is_(False), PointLot.remaining), else_=0)).label(
                "locked"
            ),
        )
        .group_by(PointLot.member_id)
        .subquery()
    )
    spendable = case((PointAccount.available > 0, PointAccount.available), else_=0)
    mismatched_lots = session.execute(
        select(
            PointAccount.member_id,
            PointAccount.available,
            func.coalesce(lot_sums.c.unlocked, 0),
            PointAccount.pending,
            func.coalesce(lot_sums.c.locked, 0),
        )
        .outerjoin(lot_sums, lot_sums.c.member_id == PointAccount.member_id)
        .where(
            (spendable != func.coalesce(lot_sums.c.unlocked, 0))
            | (PointAccount.pending != func.coalesce(lot_sums.c.locked, 0))
        )
    )
    for member_id, available, unlocked, pending, locked in mismatched_lots:
        problems.append(
            LedgerDiscrepancy(
                member_id,
                f"balance available={available} pending={pending} but lots hold "
                f"unlocked={unlocked} locked={locked}",
            )
        )
    orphans = session.execute(
        select(PointEntry.member_id)
        .outerjoin(PointAccount, PointAccount.member_id == PointEntry.member_id)
        .where(PointAccount.member_id.is_(None))
        .distinct()
    )
    problems.extend(LedgerDiscrepancy(m, "entries without an account") for (m,) in orphans)
    return problems
