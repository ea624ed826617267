"""Quote, record, return and void sales. Each is exactly-once by its external id."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.cards.models import Card
from loyalty.errors import InvalidInput
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.members.models import Member
from loyalty.members.services import LookupKeys, find_by_code, get_member
from loyalty.program import Program, get_program
from loyalty.rules.pricing import BasketLine, PricedBasket, points_kept_after_returns, price_basket
from loyalty.sales.errors import IdempotencyConflict, SaleClosed, UnknownSale
from loyalty.sales.models import Sale, SaleLine, SaleReturn, SaleStatus
from loyalty.stores.models import Terminal

# What the API accepts as an external id: printable ASCII without spaces.
EXTERNAL_ID = re.compile(r"[\x21-\x7e]{1,64}")

# A till's clock may run ahead; beyond this a sale "from the future" is a mistake, not skew.
MAX_CLOCK_SKEW = timedelta(hours=24)


@dataclass(frozen=True)
class Basket:
    lines: list[BasketLine]
    member_code: str | None = None
    member_id: int | None = None
    coupon_codes: list[str] = field(default_factory=list)
    redeem_points: int = 0


@dataclass(frozen=True)
class SaleRequest:
    external_id: str
    occurred_at: datetime
    basket: Basket


@dataclass(frozen=True)
class ReturnRequest:
    external_id: str
    lines: list[tuple[str, int]]  # (sku, quantity)


@dataclass(frozen=True)
class Recorded:
    """`created` is False when the request replayed one already recorded."""

    created: bool
    result: dict[str, Any]


def fingerprint(request: object) -> str:
    canonical = json.dumps(asdict(request), sort_keys=True, default=str)  # type: ignore[call-overload]
    return hashlib.sha256(canonical.encode()).hexdigest()


def _resolve_member(
    session: Session, basket: Basket, keys: LookupKeys
) -> tuple[Member | None, Card | None]:
    if basket.member_code:
        return find_by_code(session, basket.member_code, keys)
    if basket.member_id is not None:
        return get_member(session, basket.member_id), None
    if basket.redeem_points:
        raise InvalidInput("points can only be redeemed by an identified member", field="code")
    return None, None


def _coupon_outcomes(codes: list[str]) -> list[dict[str, Any]]:
    # Coupons arrive with their own module; until then no code matches one.
    return [{"code": code, "applied": False, "reason": "no such coupon"} for code in codes]


def _priced_summary(
    program: Program, basket: Basket, priced: PricedBasket, member: Member | None
) -> dict[str, Any]:
    return {
        "member_id": member.id if member else None,
        "currency": program.currency,
        "subtotal": priced.subtotal,
        "discounts": [
            {"line": index, "sku": line.sku, "kind": "points", "amount": share}
            for index, (line, share) in enumerate(
                zip(basket.lines, priced.line_discounts, strict=True), start=1
            )
            if share
        ],
        "discount_total": priced.points_discount,
        "total": priced.total,
        "points": {
            "earned": priced.points_earned if member else 0,
            "redeemed": priced.points_redeemed,
            "reasons": [asdict(reason) for reason in priced.earn_reasons] if member else [],
        },
        "coupons": _coupon_outcomes(basket.coupon_codes),
    }


def quote(session: Session, basket: Basket, keys: LookupKeys) -> dict[str, Any]:
    """What the sale would do, changing nothing."""
    program = get_program(session)
    member, _card = _resolve_member(session, basket, keys)
    priced = price_basket(program, basket.lines, basket.redeem_points)
    summary = _priced_summary(program, basket, priced, member)
    if member is not None:
        available = ledger.balance(session, member.id).available
        if priced.points_redeemed > available:
            raise InvalidInput(
                f"the member has {available} points available, not {priced.points_redeemed}",
                field="redeem_points",
            )
        summary["balance_after"] = available - priced.points_redeemed + priced.points_earned
    return summary


def _store_sale(session: Session, store_id: int, external_id: str) -> Sale | None:
    return session.scalars(
        select(Sale).where(Sale.store_id == store_id, Sale.external_id == external_id)
    ).first()


def _replay(sale: Sale, request_hash: str) -> Recorded:
    if sale.request_hash != request_hash:
        raise IdempotencyConflict("sale", sale.external_id)
    return Recorded(created=False, result=sale.result)


def record_sale(
    session: Session, *, terminal: Terminal, request: SaleRequest, keys: LookupKeys, now: datetime
) -> Recorded:
    request_hash = fingerprint(request)
    existing = _store_sale(session, terminal.store_id, request.external_id)
    if existing is not None:
        return _replay(existing, request_hash)
    if request.occurred_at > now + MAX_CLOCK_SKEW:
        raise InvalidInput("the sale is dated in the future", field="occurred_at")
    program = get_program(session)
    basket = request.basket
    member, card = _resolve_member(session, basket, keys)
    priced = price_basket(program, basket.lines, basket.redeem_points)
    earned = priced.points_earned if member else 0
    sale = Sale(
        store_id=terminal.store_id,
        terminal_id=terminal.id,
        external_id=request.external_id,
        request_hash=request_hash,
        member_id=member.id if member else None,
        card_id=card.id if card else None,
        occurred_at=request.occurred_at,
        recorded_at=now,
        currency=program.currency,
        subtotal=priced.subtotal,
        discount_total=priced.points_discount,
        total=priced.total,
        points_earned=earned,
        points_redeemed=priced.points_redeemed,
        points_reversed=0,
        status=SaleStatus.COMPLETED,
        result={},
        lines=[
            SaleLine(
                line_no=index,
                sku=line.sku,
                category=line.category,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                discount=share,
                returned_quantity=0,
            )
            for index, (line, share) in enumerate(
                zip(basket.lines, priced.line_discounts, strict=True), start=1
            )
        ],
    )
    try:
        with session.begin_nested():
            session.add(sale)
            session.flush()
    except IntegrityError:
        # Another till request with the same id committed first: answer as a replay.
        existing = _store_sale(session, terminal.store_id, request.external_id)
        if existing is None:
            raise
        return _replay(existing, request_hash)

    result = _priced_summary(program, basket, priced, member)
    result |= {"external_id": request.external_id, "status": SaleStatus.COMPLETED}
    if member is not None:
        if priced.points_redeemed:
            ledger.redeem(
                session,
                member_id=member.id,
                points=priced.points_redeemed,
                reason=f"sale {request.external_id}",
                actor=terminal.actor,
                now=now,
                sale_id=sale.id,
            )
        if earned:
            ledger.credit(
                session,
                program=program,
                member_id=member.id,
                points=earned,
                kind=EntryKind.EARN,
                reason=f"sale {request.external_id}",
                actor=terminal.actor,
                now=now,
                sale_id=sale.id,
                earned_at=request.occurred_at,
            )
        result["balance"] = asdict(ledger.balance(session, member.id))
    else:
        result["balance"] = None
    # Tiers arrive with the earning-rules work; the till contract carries the fields already.
    result |= {"tier": None, "tier_changed": False}
    sale.result = result
    return Recorded(created=True, result=result)


def _locked_sale(session: Session, terminal: Terminal, external_id: str) -> Sale:
    """The sale, locked against a concurrent return or void of the same sale (PostgreSQL; on
    SQLite the write transaction already excludes them). Another store's sales do not exist
    for this terminal."""
    if not EXTERNAL_ID.fullmatch(external_id):
        raise UnknownSale(external_id)  # no sale can have such an id; spare the database
    sale = session.scalars(
        select(Sale)
        .where(Sale.store_id == terminal.store_id, Sale.external_id == external_id)
        .with_for_update()
    ).first()
    if sale is None:
        raise UnknownSale(external_id)
    return sale


def _redemption_of(session: Session, sale: Sale) -> PointEntry | None:
    return session.scalars(
        select(PointEntry).where(PointEntry.sale_id == sale.id, PointEntry.kind == EntryKind.REDEEM)
    ).first()


def _paid_still_kept(sale: Sale) -> int:
    return sum(
        (line.amount - line.discount) * (line.quantity - line.returned_quantity) // line.quantity
        for line in sale.lines
    )


def _take_back_points(
    session: Session, sale: Sale, *, everything: bool, reason: str, actor: str, now: datetime
) -> tuple[int, int]:
    """Reverse the earned points that the goods still kept no longer justify, and on a full
    return give back redeemed points. Returns (reversed, restored)."""
    if everything:
        keep = 0
    else:
        keep = points_kept_after_returns(sale.points_earned, sale.total, _paid_still_kept(sale))
    to_reverse = sale.points_earned - sale.points_reversed - keep
    restored = 0
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
        redemption = _redemption_of(session, sale) if everything else None
        if redemption is not None:
            ledger.reverse_redemption(
                session, redemption=redemption, reason=reason, actor=actor, now=now
            )
            restored = -redemption.points
    sale.points_reversed += max(to_reverse, 0)
    return max(to_reverse, 0), restored


def _refuse_closed(sale: Sale) -> None:
    if sale.status == SaleStatus.RETURNED:
        raise SaleClosed(f"sale {sale.external_id!r} has been returned in full already")
    if sale.status == SaleStatus.VOIDED:
        raise SaleClosed(f"sale {sale.external_id!r} has been voided")


def _mark_returned(sale: Sale, lines: list[tuple[str, int]]) -> None:
    for sku, quantity in lines:
        left = quantity
        for line in sale.lines:
            if line.sku != sku or left == 0:
                continue
            taken = min(line.quantity - line.returned_quantity, left)
            line.returned_quantity += taken
            left -= taken
        if left:
            sold = sum(line.quantity for line in sale.lines if line.sku == sku)
            if not sold:
                raise InvalidInput(f"sku {sku!r} is not in this sale", field="lines")
            raise InvalidInput(
                f"cannot return {quantity} of sku {sku!r}: {sold} sold, "
                f"{sold - (quantity - left)} returned already",
                field="lines",
            )


def _balance_or_none(session: Session, sale: Sale) -> dict[str, int] | None:
    if sale.member_id is None:
        return None
    return asdict(ledger.balance(session, sale.member_id))


def record_return(
    session: Session,
    *,
    terminal: Terminal,
    sale_external_id: str,
    request: ReturnRequest,
    now: datetime,
) -> Recorded:
    request_hash = fingerprint(request)
    sale = _locked_sale(session, terminal, sale_external_id)
    existing = session.scalars(
        select(SaleReturn).where(
            SaleReturn.sale_id == sale.id, SaleReturn.external_id == request.external_id
        )
    ).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict("return", request.external_id)
        return Recorded(created=False, result=existing.result)
    _refuse_closed(sale)
    _mark_returned(sale, request.lines)
    everything = all(line.returned_quantity == line.quantity for line in sale.lines)
    reversed_points, restored = _take_back_points(
        session,
        sale,
        everything=everything,
        reason=f"return {request.external_id} of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.RETURNED if everything else SaleStatus.PARTIALLY_RETURNED
    result = {
        "external_id": request.external_id,
        "sale_external_id": sale.external_id,
        "sale_status": sale.status,
        "points_reversed": reversed_points,
        "points_restored": restored,
        "balance": _balance_or_none(session, sale),
    }
    session.add(
        SaleReturn(
            sale_id=sale.id,
            terminal_id=terminal.id,
            external_id=request.external_id,
            request_hash=request_hash,
            points_reversed=reversed_points,
            points_restored=restored,
            result=result,
            created_at=now,
        )
    )
    return Recorded(created=True, result=result)


def void_sale(
    session: Session, *, terminal: Terminal, sale_external_id: str, now: datetime
) -> Recorded:
    sale = _locked_sale(session, terminal, sale_external_id)
    if sale.status == SaleStatus.VOIDED and sale.void_result is not None:
        return Recorded(created=False, result=sale.void_result)
    _refuse_closed(sale)
    reversed_points, restored = _take_back_points(
        session,
        sale,
        everything=True,
        reason=f"void of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.VOIDED
    result = {
        "sale_external_id": sale.external_id,
        "sale_status": sale.status,
        "points_reversed": reversed_points,
        "points_restored": restored,
        "balance": _balance_or_none(session, sale),
    }
    sale.void_result = result
    return Recorded(created=True, result=result)
