"""Returns and voids: goods come back, and the points follow them. Each is exactly-once (a
return by its own external id, a void once per sale), and a replay answers the first result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.checkout.referrals import after_full_return
from loyalty.checkout.results import ReturnResult, VoidResult
from loyalty.coupons.till import give_back
from loyalty.idempotency import IdempotencyConflict, fingerprint
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.results import Outcome, restored, stored
from loyalty.rules.pricing import points_kept_after_returns
from loyalty.rules.services import withdraw_awards
from loyalty.sales import services as sales
from loyalty.sales.models import Sale, SaleReturn, SaleStatus
from loyalty.stores.models import TerminalLike


@dataclass(frozen=True)
class ReturnRequest:
    external_id: str
    lines: list[tuple[str, int]]  # (sku, quantity)


@dataclass(frozen=True)
class _TakenBack:
    reversed: int
    restored: int


def _redemption_of(session: Session, sale: Sale) -> int | None:
    return session.scalars(
        select(PointEntry.id).where(
            PointEntry.sale_id == sale.id, PointEntry.kind == EntryKind.REDEEM
        )
    ).first()


def _take_back_points(
    session: Session, sale: Sale, *, everything: bool, reason: str, actor: str, now: datetime
) -> _TakenBack:
    """Reverse the earned points that the goods still kept no longer justify, and on a full
    return give back redeemed points."""
    if everything:
        keep = 0
    else:
        keep = points_kept_after_returns(
            sale.points_earned, sale.total, sales.paid_still_kept(sale)
        )
    to_reverse = sale.points_earned - sale.points_reversed - keep
    restored_points = 0
    if sale.member_id is not None:
        if to_reverse > 0:
            ledger.reverse_earning(
                session,
                member_id=sale.member_id,
                points=to_reverse,
                sale_id=sale.id,
                reason=reason,
                actor=actor,
                now=now,
            )
        if everything:
            withdraw_awards(session, sale.id)
        redemption = _redemption_of(session, sale) if everything else None
        if redemption is not None:
            ledger.reverse_redemption(
                session, redemption_id=redemption, reason=reason, actor=actor, now=now
            )
            restored_points = sale.points_redeemed
    sale.points_reversed += max(to_reverse, 0)
    return _TakenBack(max(to_reverse, 0), restored_points)


def _balance_or_none(session: Session, sale: Sale, now: datetime) -> ledger.Balance | None:
    if sale.member_id is None:
        return None
    return ledger.balance_as_of(session, sale.member_id, now)


def record_return(
    session: Session,
    *,
    terminal: TerminalLike,
    sale_external_id: str,
    request: ReturnRequest,
    now: datetime,
) -> Outcome[ReturnResult]:
    request_hash = fingerprint(request)
    sale = sales.find_sale(session, terminal.store_id, sale_external_id, lock=True)
    existing = sales.find_return(session, sale.id, request.external_id)
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict("return", request.external_id)
        return Outcome(restored(existing.result, ReturnResult), created=False)
    sales.refuse_closed(sale)
    sales.mark_returned(sale, request.lines)
    sale.kept_total = sales.paid_still_kept(sale)
    everything = all(line.returned_quantity == line.quantity for line in sale.lines)
    # the coupons' rows before the member's account, in the order a sale locks them
    coupons_returned = give_back(session, sale.id, now) if everything else 0
    taken = _take_back_points(
        session,
        sale,
        everything=everything,
        reason=f"return {request.external_id} of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.RETURNED if everything else SaleStatus.PARTIALLY_RETURNED
    if everything:
        after_full_return(session, sale_id=sale.id, actor=terminal.actor, now=now)
    result = ReturnResult(
        coupons_returned=coupons_returned,
        external_id=request.external_id,
        sale_external_id=sale.external_id,
        sale_status=sale.status,
        points_reversed=taken.reversed,
        points_restored=taken.restored,
        balance=_balance_or_none(session, sale, now),
    )
    session.add(
        SaleReturn(
            sale_id=sale.id,
            terminal_id=terminal.id,
            external_id=request.external_id,
            request_hash=request_hash,
            points_reversed=taken.reversed,
            points_restored=taken.restored,
            result=stored(result),
            created_at=now,
        )
    )
    return Outcome(result, created=True)


def void_sale(
    session: Session, *, terminal: TerminalLike, sale_external_id: str, now: datetime
) -> Outcome[VoidResult]:
    sale = sales.find_sale(session, terminal.store_id, sale_external_id, lock=True)
    if sale.status == SaleStatus.VOIDED and sale.void_result is not None:
        return Outcome(restored(sale.void_result, VoidResult), created=False)
    sales.refuse_closed(sale)
    coupons_returned = give_back(session, sale.id, now)  # before the account, as a sale locks
    taken = _take_back_points(
        session,
        sale,
        everything=True,
        reason=f"void of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.VOIDED
    after_full_return(session, sale_id=sale.id, actor=terminal.actor, now=now)
    result = VoidResult(
        coupons_returned=coupons_returned,
        sale_external_id=sale.external_id,
        sale_status=sale.status,
        points_reversed=taken.reversed,
        points_restored=taken.restored,
        balance=_balance_or_none(session, sale, now),
    )
    sale.void_result = stored(result)
    return Outcome(result, created=True)
