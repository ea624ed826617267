"""Reading back what a till recorded: a sale as it stands now, and the first answer of a return
or a void. A terminal reads its own store's sales only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from loyalty.checkout.results import ReturnResult, VoidResult
from loyalty.errors import NotFound
from loyalty.idempotency import CLIENT_ID
from loyalty.results import restored
from loyalty.sales.errors import UnknownSale
from loyalty.sales.models import Sale, SaleReturn
from loyalty.stores.models import TerminalLike


@dataclass(frozen=True)
class SaleLineView:
    line: int
    sku: str
    category: str | None
    quantity: int
    unit_price: int
    discount: int
    returned_quantity: int


@dataclass(frozen=True)
class ReturnRef:
    external_id: str
    points_reversed: int
    points_restored: int
    created_at: datetime


@dataclass(frozen=True)
class SaleView:
    external_id: str
    status: str
    member_id: int | None
    occurred_at: datetime
    recorded_at: datetime
    currency: str
    subtotal: int
    discount_total: int
    total: int
    points_earned: int
    points_redeemed: int
    points_reversed: int
    lines: tuple[SaleLineView, ...]
    returns: tuple[ReturnRef, ...]


def _sale(session: Session, terminal: TerminalLike, external_id: str) -> Sale:
    if not CLIENT_ID.match(external_id):
        raise UnknownSale(external_id)
    sale = session.scalars(
        select(Sale)
        .where(Sale.store_id == terminal.store_id, Sale.external_id == external_id)
        .options(selectinload(Sale.lines))
    ).first()
    if sale is None:
        raise UnknownSale(external_id)
    return sale


def read_sale(session: Session, terminal: TerminalLike, external_id: str) -> SaleView:
    sale = _sale(session, terminal, external_id)
    returns = session.scalars(
        select(SaleReturn).where(SaleReturn.sale_id == sale.id).order_by(SaleReturn.id)
    )
    return SaleView(
        external_id=sale.external_id,
        status=sale.status,
        member_id=sale.member_id,
        occurred_at=sale.occurred_at,
        recorded_at=sale.recorded_at,
        currency=sale.currency,
        subtotal=sale.subtotal,
        discount_total=sale.discount_total,
        total=sale.total,
        points_earned=sale.points_earned,
        points_redeemed=sale.points_redeemed,
        points_reversed=sale.points_reversed,
        lines=tuple(
            SaleLineView(
                line.line_no,
                line.sku,
                line.category,
                line.quantity,
                line.unit_price,
                line.discount,
                line.returned_quantity,
            )
            for line in sale.lines
        ),
        returns=tuple(
            ReturnRef(r.external_id, r.points_reversed, r.points_restored, r.created_at)
            for r in returns
        ),
    )


def read_return(
    session: Session, terminal: TerminalLike, sale_external_id: str, external_id: str
) -> ReturnResult:
    sale = _sale(session, terminal, sale_external_id)
    found = session.scalars(
        select(SaleReturn).where(
            SaleReturn.sale_id == sale.id, SaleReturn.external_id == external_id
        )
    ).first()
    if found is None:
        raise NotFound(f"sale {sale_external_id!r} has no return {external_id!r}", field="return")
    return restored(found.result, ReturnResult)


def read_void(session: Session, terminal: TerminalLike, sale_external_id: str) -> VoidResult:
    sale = _sale(session, terminal, sale_external_id)
    if sale.void_result is None:
        raise NotFound(f"sale {sale_external_id!r} has not been voided", field="external_id")
    return restored(sale.void_result, VoidResult)
