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
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.expiry import lot_expiry
from loyalty.ledger.models import EntryKind, LotDraw, PointAccount, PointEntry, PointLot
from loyalty.program import Program


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int


def open_account(session: Session, member_id: int, now: datetime) -> PointAccount:
    account = PointAccount(member_id=member_id, available=0, pending=0, updated_at=now)
    session.add(account)
    return account


def balance(session: Session, member_id: int) -> Balance:
    row = session.execute(
        select(PointAccount.available, PointAccount.pending).where(
            PointAccount.member_id == member_id
        )
    ).one()
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
) -> PointEntry:
    entry = PointEntry(
        member_id=member_id,
        kind=kind,
        points=points,
        pending_points=0,
        sale_id=sale_id,
        reason=reason,
        actor=actor,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def _shift_available(session: Session, member_id: int, delta: int, now: datetime) -> int:
    """Apply a signed change and return the new balance, in one statement."""
    return session.execute(
        update(PointAccount)
        .where(PointAccount.member_id == member_id)
        .values(available=PointAccount.available + delta, updated_at=now)
        .returning(PointAccount.available),
        execution_options={"synchronize_session": False},
    ).scalar_one()


def credit(
    session: Session,
    *,
    program: Program,
    member_id: int,
    points: int,
    kind: EntryKind,
    reason: str,
    actor: str,
    now: datetime,
    sale_id: int | None = None,
    earned_at: datetime | None = None,
) -> PointEntry:
    """Add points as a new lot. A debt is paid off first: the lot holds only what is left.
    `earned_at` (when the sale happened, for a till that was offline) decides the expiry."""
    if points <= 0:
        msg = "a credit adds a positive number of points"
        raise ValueError(msg)
    new_available = _shift_available(session, member_id, points, now)
    entry = _add_entry(
        session,
        member_id=member_id,
        kind=kind,
        points=points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    session.add(
        PointLot(
            member_id=member_id,
            entry_id=entry.id,
            sale_id=sale_id,
            points=points,
            remaining=min(points, max(new_available, 0)),
            unlocked=True,
            unlocks_at=now,
            expires_at=lot_expiry(program, earned_at or now),
            created_at=now,
        )
    )
    return entry


def _draw_lots(
    session: Session, *, member_id: int, entry: PointEntry, points: int, own_sale_id: int | None
) -> None:
    """Take `points` from unlocked lots, soonest expiry first (a sale's own lot first when a
    return takes back what that sale earned), recording each draw."""
    order: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = []
    if own_sale_id is not None:
        order.append(case((PointLot.sale_id == own_sale_id, 0), else_=1))
    # Lots that never expire go last; NULLS LAST is spelt differently per database.
    order += [case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id]
    lots = session.scalars(
        select(PointLot)
        .where(
            PointLot.member_id == member_id,
            PointLot.unlocked.is_(True),
            PointLot.remaining > 0,
        )
        .order_by(*order)
    )
    left = points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        left -= taken
        session.add(LotDraw(entry_id=entry.id, lot_id=lot.id, points=taken))


def redeem(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
    sale_id: int | None = None,
) -> PointEntry:
    """Spend points. The balance check and the debit are one conditional UPDATE, so two tills
    racing for the same points cannot both win."""
    if points <= 0:
        msg = "a redemption spends a positive number of points"
        raise ValueError(msg)
    debited = session.execute(
        update(PointAccount)
        .where(PointAccount.member_id == member_id, PointAccount.available >= points)
        .values(available=PointAccount.available - points, updated_at=now)
        .returning(PointAccount.available),
        execution_options={"synchronize_session": False},
    ).first()
    if debited is None:
        raise NotEnoughPoints(points)
    entry = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REDEEM,
        points=-points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    _draw_lots(session, member_id=member_id, entry=entry, points=points, own_sale_id=None)
    return entry


def reverse_earning(
    session: Session,
    *,
    member_id: int,
    points: int,
    sale_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> PointEntry:
    """Take back points a sale earned, from that sale's lot first. If the member has spent them
    already the balance goes negative: the points are owed, never silently forgiven."""
    before = _shift_available(session, member_id, -points, now) + points
    entry = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=-points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    from_lots = min(points, max(before, 0))
    if from_lots:
        _draw_lots(session, member_id=member_id, entry=entry, points=from_lots, own_sale_id=sale_id)
    return entry


def reverse_redemption(
    session: Session,
    *,
    redemption: PointEntry,
    reason: str,
    actor: str,
    now: datetime,
) -> PointEntry:
    """Give back redeemed points to the very lots they came from (same expiry as before)."""
    points = -redemption.points
    member_id = redemption.member_id
    after = _shift_available(session, member_id, points, now)
    entry = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=points,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=redemption.sale_id,
    )
    # A debt is paid before any lot is refilled, so that lots keep adding up to the balance.
    refill = min(points, max(after, 0))
    draws = session.execute(
        select(LotDraw, PointLot)
        .join(PointLot, PointLot.id == LotDraw.lot_id)
        .where(LotDraw.entry_id == redemption.id)
        .order_by(PointLot.expires_at.desc(), LotDraw.id.desc())
    ).all()
    for draw, lot in draws:
        if refill == 0:
            break
        given = min(draw.points, refill)
        lot.remaining += given
        refill -= given
    return entry


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
