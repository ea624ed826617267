"""Every change to a balance goes through here.

Invariants kept in the same transaction as each entry (and checked by `check_ledger`):
- account.available == sum(entry.points) and account.pending == sum(entry.pending_points);
- the unlocked lots' remaining points add up to max(available, 0) (a negative balance is a debt
  that no lot holds), the locked lots' to `pending`.

The account row is updated first with a single conditional UPDATE. On PostgreSQL that row lock
serialises everything else done to the member's lots in the transaction; on SQLite the database
write lock does the same. Jobs that work on many members (ledger/jobs.py) lock their batch's
accounts first too, in member order, before they read a lot.

Pending points: with a pending period (program.pending_days > 0), points earned on a sale go
into a locked lot and `pending` until `unlocks_at`; then an `unlock` entry moves them to
`available` (the unlock job, or a redemption by that member, whichever comes first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from loyalty.db import MAX_ID, UtcDateTime
from loyalty.errors import NotFound
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.expiry import lot_expiry
from loyalty.ledger.models import EntryKind, LotDraw, PointAccount, PointEntry, PointLot
from loyalty.members.services import get_member
from loyalty.program import ProgramSettings


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int


@dataclass(frozen=True)
class Posted:
    """An entry written, and the member's balance right after it. `unlocked`: pending points
    that a redemption made available first (they had matured), already in `balance`."""

    entry_id: int
    balance: Balance
    unlocked: int = 0


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


def _account_change(*, available: int, pending: int, stamped: bool = True) -> Any:
    """UPDATE one account by :delta times these signs, returning the new balance."""
    delta = bindparam("delta", type_=BigInteger)
    values: dict[str, Any] = {}
    for name, sign in (("available", available), ("pending", pending)):
        column = _accounts.c[name]
        if sign:
            values[name] = column + delta if sign > 0 else column - delta
    if stamped:
        values["updated_at"] = bindparam("changed_at", type_=UtcDateTime())
    return (
        update(_accounts)
        .where(_accounts.c.member_id == bindparam("member"))
        .values(**values)
        .returning(*_BALANCE)
    )


_SHIFT_AVAILABLE = _account_change(available=+1, pending=0)
_SHIFT_PENDING = _account_change(available=0, pending=+1)
_MOVE_PENDING_TO_AVAILABLE = _account_change(available=+1, pending=-1, stamped=False)
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
    """The account as stored (see balance_as_of for what to show)."""
    row = session.connection().execute(_READ_BALANCE, {"member_id": member_id}).one()
    return Balance(available=row.available, pending=row.pending)


def matured(now: datetime | ColumnElement[Any]) -> Callable[[FromClause], ColumnElement[bool]]:
    """Lots still locked whose wait is over at `now` (a moment, or a bound parameter)."""
    return lambda lots: and_(lots.c.unlocked.is_(False), lots.c.unlocks_at <= now)


def matured_points(member_id: Any) -> Any:
    """Pending points whose wait was over at `:now` but that no unlock has moved yet: the member
    can spend them, because a redemption unlocks them first. Looked for only when the account
    has pending points, through the partial index of locked lots."""
    waited = (
        select(func.coalesce(func.sum(_lots.c.remaining), 0))
        .where(
            _lots.c.member_id == member_id,
            matured(bindparam("now", type_=UtcDateTime()))(_lots),
        )
        .scalar_subquery()
    )
    return case((_accounts.c.pending > 0, waited), else_=0)


def as_of(available: int, pending: int, matured: int | Decimal) -> Balance:
    """The balance as the member can use it now: matured points count as available, and pay a
    debt first, exactly as unlocking them would. (PostgreSQL sums bigints as numeric.)"""
    return Balance(available=available + int(matured), pending=pending - int(matured))


_READ_BALANCE_AS_OF = select(
    *_BALANCE, matured_points(_accounts.c.member_id).label("matured")
).where(_accounts.c.member_id == bindparam("member_id"))


def balance_as_of(session: Session, member_id: int, now: datetime) -> Balance:
    """What to show the member and the till: matured pending points already count as available,
    whether or not the unlock job has run."""
    row = (
        session.connection()
        .execute(_READ_BALANCE_AS_OF, {"member_id": member_id, "now": now})
        .one()
    )
    return as_of(row.available, row.pending, row.matured)


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
    pending_points: int = 0,
) -> int:
    params = {
        "member_id": member_id,
        "kind": kind.value,
        "points": points,
        "pending_points": pending_points,
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


def _shift_pending(session: Session, member_id: int, delta: int, now: datetime) -> Balance:
    row = (
        session.connection()
        .execute(_SHIFT_PENDING, {"member": member_id, "delta": delta, "changed_at": now})
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
    `earned_at` (when the sale happened, for a till that was offline) decides the expiry.

    Points earned on a sale wait `program.pending_days` after `earned_at` in a locked lot, as
    pending points, so that a return inside that window takes them back before they are
    spent; a sale recorded after its window has passed credits them at once. Points that do
    not come from a sale (bonuses, adjustments) are never pending."""
    if points <= 0:
        msg = "a credit adds a positive number of points"
        raise ValueError(msg)
    earned = earned_at or now
    unlocks_at = earned + timedelta(days=program.pending_days)
    pending = program.pending_days > 0 and sale_id is not None and unlocks_at > now
    if pending:
        after = _shift_pending(session, member_id, points, now)
    else:
        after = _shift_available(session, member_id, points, now)
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=kind,
        points=0 if pending else points,
        pending_points=points if pending else 0,
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
            # A debt is paid when pending points unlock, not while they wait.
            "remaining": points if pending else min(points, max(after.available, 0)),
            "unlocked": not pending,
            "unlocks_at": unlocks_at if pending else now,
            "expires_at": lot_expiry(program, earned),
            "created_at": now,
        },
    )
    return Posted(entry_id, after)


def _draw_lots(
    session: Session, *, member_id: int, entry_id: int, points: int, own_sale_id: int | None
) -> None:
    """Take `points` from unlocked lots, soonest expiry first (a sale's own lot first when a
    return takes back what that sale earned), recording each draw."""
    order: list[ColumnElement[Any]] = []
    if own_sale_id is not None:
        order.append(case((_lots.c.sale_id == own_sale_id, 0), else_=1))
    order += soonest_expiry_first(_lots)
    lots = session.connection().execute(
        select(_lots.c.id, _lots.c.remaining)
        .where(
            _lots.c.member_id == member_id,
            _lots.c.unlocked.is_(True),
            _lots.c.remaining > 0,
        )
        .order_by(*order)
    )
    draws = take_in_order(lots, points)
    _move_lot_points(session, entry_id, draws, sign=-1)


def take_in_order(lots: Iterable[Any], points: int) -> list[dict[str, int]]:
    """Up to `points` from (lot id, points held) rows, in the order given: what to move."""
    moves: list[dict[str, int]] = []
    left = points
    for lot_id, held in lots:
        if left == 0:
            break
        taken = min(held, left)
        left -= taken
        moves.append({"lot_id": lot_id, "points": taken})
    return moves


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


# --- set-based work on many members' lots (pending points maturing here, expiry in jobs.py) --

MemberScope = Callable[[ColumnElement[Any]], ColumnElement[bool]]
"""The members a set-based statement touches, as a filter on a member_id column: a batch's range
of ids for a job, one id for a redemption."""

UNLOCK_ACTOR = "system:unlock"


def one_member(member_id: int) -> MemberScope:
    return lambda column: column == member_id


def member_range(after: int, last: int) -> MemberScope:
    return lambda column: and_(column > after, column <= last)


def members_in(member_ids: list[int]) -> MemberScope:
    """Exactly these members: what a batch locked, so it never writes for a member whose
    account it does not hold (a lot committed by a till after the lock stays for the next run)."""
    return lambda column: column.in_(member_ids)


def lock_accounts(
    session: Session,
    scope: MemberScope,
    *,
    with_lots: Callable[[FromClause], ColumnElement[bool]],
    accounts_where: ColumnElement[bool] | None = None,
) -> list[int]:
    """Lock the accounts in `scope` that have a lot matching `with_lots`, in member order (the
    order every batch job locks in, so two of them never deadlock), and return their ids.

    This is the ledger's rule for many members at once: accounts first, then their lots. A till
    that is spending one of these members' points waits for the batch (or the batch for it);
    on SQLite the write lock the transaction began with does the same."""
    lots = _lots.alias("lot")
    has_lot = exists().where(
        lots.c.member_id == _accounts.c.member_id, scope(lots.c.member_id), with_lots(lots)
    )
    query = (
        select(_accounts.c.member_id)
        .where(scope(_accounts.c.member_id), has_lot)
        .order_by(_accounts.c.member_id)
        .with_for_update(of=_accounts)
    )
    if accounts_where is not None:
        query = query.where(accounts_where)
    return list(session.connection().execute(query).scalars())


def latest_entry_id(session: Session) -> int:
    """Entries a batch writes are told apart from older ones by id: nobody else can write an
    entry for the batch's members while it holds their accounts."""
    return int(
        session.connection().execute(select(func.coalesce(func.max(_entries.c.id), 0))).scalar_one()
    )


def soonest_expiry_first(lots: FromClause) -> list[ColumnElement[Any]]:
    """Lots that never expire last; NULLS LAST is spelt differently per database."""
    return [case((lots.c.expires_at.is_(None), 1), else_=0), lots.c.expires_at, lots.c.id]


def apply_entries_to_accounts(
    session: Session, *, scope: MemberScope, kind: EntryKind, after_entry: int, now: datetime
) -> None:
    """Add the entries of `kind` written since `after_entry` to their members' accounts, in one
    UPDATE … FROM."""
    session.connection().execute(
        update(_accounts)
        .where(
            _accounts.c.member_id == _entries.c.member_id,
            _entries.c.id > after_entry,
            _entries.c.kind == kind.value,
            scope(_entries.c.member_id),
        )
        .values(
            available=_accounts.c.available + _entries.c.points,
            pending=_accounts.c.pending + _entries.c.pending_points,
            updated_at=literal(now, UtcDateTime()),
        )
    )


def entries_from_lots(
    *,
    kind: EntryKind,
    points: ColumnElement[Any],
    pending_points: ColumnElement[Any],
    reason: str,
    actor: str,
    now: datetime,
    lots: FromClause,
    where: ColumnElement[bool],
    having: ColumnElement[bool],
) -> Any:
    """INSERT … SELECT … GROUP BY member: one entry per member from their lots."""
    return (
        insert(_entries)
        .from_select(
            ["member_id", "kind", "points", "pending_points", "reason", "actor", "created_at"],
            select(
                lots.c.member_id,
                literal(kind.value),
                points,
                pending_points,
                literal(reason),
                literal(actor),
                literal(now, UtcDateTime()),
            )
            .where(where)
            .group_by(lots.c.member_id)
            .having(having),
        )
        .returning(_entries.c.points, _entries.c.pending_points)
    )


@dataclass(frozen=True)
class Moved:
    """What a set-based run did: members given an entry, the points those entries moved
    (signed, to available and to pending), and the lots it changed."""

    members: int = 0
    points: int = 0
    pending_points: int = 0
    lots: int = 0

    def __add__(self, other: Moved) -> Moved:
        return Moved(
            self.members + other.members,
            self.points + other.points,
            self.pending_points + other.pending_points,
            self.lots + other.lots,
        )


def unlock_matured(session: Session, *, scope: MemberScope, now: datetime) -> Moved:
    """Move the matured locked lots of the members in `scope` (accounts already locked by the
    caller) to available: one `unlock` entry per member (points +r, pending_points -r).

    A member in debt (available < 0) pays it from what unlocks, as a credit would: the lots
    that expire first give up their points to the debt, and hold only what is left."""
    connection = session.connection()
    lots = _lots.alias("lot")
    is_matured = and_(scope(lots.c.member_id), matured(now)(lots))
    after_entry = latest_entry_id(session)
    written = connection.execute(
        entries_from_lots(
            kind=EntryKind.UNLOCK,
            points=func.sum(lots.c.remaining),
            pending_points=-func.sum(lots.c.remaining),
            reason="pending points unlocked",
            actor=UNLOCK_ACTOR,
            now=now,
            lots=lots,
            where=is_matured,
            having=func.sum(lots.c.remaining) > 0,
        )
    ).all()
    debt = case((_accounts.c.available < 0, -_accounts.c.available), else_=0)
    through = func.sum(lots.c.remaining).over(
        partition_by=lots.c.member_id, order_by=soonest_expiry_first(lots), rows=(None, 0)
    )
    unlocking = (
        select(
            lots.c.id.label("lot_id"),
            lots.c.remaining.label("remaining"),
            debt.label("debt"),
            through.label("through"),
        )
        .join_from(lots, _accounts, _accounts.c.member_id == lots.c.member_id)
        .where(is_matured)
        .subquery("unlocking")
    )
    before = unlocking.c.through - unlocking.c.remaining
    kept = case(
        (unlocking.c.debt <= before, unlocking.c.remaining),
        (unlocking.c.debt >= unlocking.c.through, 0),
        else_=unlocking.c.through - unlocking.c.debt,
    )
    changed = connection.execute(
        update(_lots)
        .where(_lots.c.id == unlocking.c.lot_id)
        .values(unlocked=true(), remaining=kept)
    ).rowcount
    apply_entries_to_accounts(
        session, scope=scope, kind=EntryKind.UNLOCK, after_entry=after_entry, now=now
    )
    return Moved(
        members=len(written),
        points=sum(row.points for row in written),
        pending_points=sum(row.pending_points for row in written),
        lots=changed,
    )


def unlock_member(session: Session, member_id: int, now: datetime) -> int:
    """Unlock one member's matured lots now (a redemption does, so points can be spent the
    moment they mature even if the unlock job has not run). The points made available."""
    scope = one_member(member_id)
    locked = lock_accounts(
        session, scope, with_lots=matured(now), accounts_where=_accounts.c.pending > 0
    )
    if not locked:
        return 0
    return unlock_matured(session, scope=scope, now=now).points


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
    conditional UPDATE, so two tills racing for the same points cannot both win.

    Pending points that have matured are unlocked first when the member has any pending (after
    the debit when it succeeds, so a member without pending points pays nothing for this)."""
    if points <= 0:
        msg = "a redemption spends a positive number of points"
        raise ValueError(msg)
    params = {"member": member_id, "points": points, "changed_at": now}
    connection = session.connection()
    unlocked = 0
    debited = connection.execute(_DEBIT_IF_AVAILABLE, params).first()
    if debited is None:
        unlocked = unlock_member(session, member_id, now)
        if not unlocked:
            raise NotEnoughPoints(points)
        debited = connection.execute(_DEBIT_IF_AVAILABLE, params).first()
        if debited is None:
            raise NotEnoughPoints(points)
        after = Balance(debited.available, debited.pending)
    elif debited.pending > 0 and (unlocked := unlock_member(session, member_id, now)):
        after = balance(session, member_id)
    else:
        after = Balance(debited.available, debited.pending)
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
    return Posted(entry_id, after, unlocked)


def _take_from_pending(
    session: Session, *, member_id: int, sale_id: int, points: int
) -> list[dict[str, int]]:
    """Draws of up to `points` from the sale's own lots that are still locked."""
    lots = session.connection().execute(
        select(_lots.c.id, _lots.c.remaining)
        .where(
            _lots.c.member_id == member_id,
            _lots.c.sale_id == sale_id,
            _lots.c.unlocked.is_(False),
            _lots.c.remaining > 0,
        )
        .order_by(*soonest_expiry_first(_lots))
    )
    draws = take_in_order(lots, points)
    return draws


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
    """Take back points a sale earned, from that sale's lot first. While that lot is still
    pending, the points come off `pending` (they were never spendable); the rest comes off
    `available`. If the member has spent them already the balance goes negative: the points
    are owed, never silently forgiven."""
    after = _shift_available(session, member_id, -points, now)  # locks the account first
    pending_draws: list[dict[str, int]] = []
    if after.pending > 0:
        pending_draws = _take_from_pending(
            session, member_id=member_id, sale_id=sale_id, points=points
        )
    from_pending = sum(draw["points"] for draw in pending_draws)
    if from_pending:
        row = (
            session.connection()
            .execute(_MOVE_PENDING_TO_AVAILABLE, {"member": member_id, "delta": from_pending})
            .one()
        )
        after = Balance(row.available, row.pending)
    from_available = points - from_pending
    entry_id = _add_entry(
        session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=-from_available,
        pending_points=-from_pending,
        reason=reason,
        actor=actor,
        now=now,
        sale_id=sale_id,
    )
    _move_lot_points(session, entry_id, pending_draws, sign=-1)
    from_lots = min(from_available, max(after.available + from_available, 0))
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
    _move_lot_points(session, entry_id, take_in_order(draws, refill), sign=+1)
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
class EntryPage:
    entries: list[PointEntry]
    next_cursor: int | None  # the `before_id` of the next page; None on the last


def history_page(
    session: Session, member_id: int, *, before_id: int | None, limit: int
) -> EntryPage:
    """A page of a member's (not erased) history, newest first."""
    get_member(session, member_id)
    entries = history(session, member_id, before_id=before_id, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return EntryPage(entries, entries[-1].id if more else None)


def entry(session: Session, member_id: int, entry_id: int) -> PointEntry:
    """One entry of a member's history."""
    get_member(session, member_id)
    found = session.get(PointEntry, entry_id) if 0 < entry_id <= MAX_ID else None
    if found is None or found.member_id != member_id:
        raise NotFound(f"member {member_id} has no entry {entry_id}", field="entry_id")
    return found


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
