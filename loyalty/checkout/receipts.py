"""Reading back what a till recorded: a sale as it stands now, and the first answer of a return
or a void. A terminal reads its own store's sales only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.checkout.results import ReturnResult, VoidResult
from loyalty.errors import NotFound
from loyalty.idempotency import CLIENT_ID
from loyalty.results import restored
from loyalty.sales.errors import UnknownSale
from loyalty.sales.models import Sale, SaleReturn
from loyalty.sales.services import SaleView, sale_views, with_lines
from loyalty.stores.models import TerminalLike


def _sale(session: Session, terminal: TerminalLike, external_id: str) -> Sale:
    if not CLIENT_ID.match(external_id):
        raise UnknownSale(external_id)
    sale = session.scalars(
        with_lines(
            select(Sale).where(Sale.store_id == terminal.store_id, Sale.external_id == external_id)
        )
    ).first()
    if sale is None:
        raise UnknownSale(external_id)
    return sale


def read_sale(session: Session, terminal: TerminalLike, external_id: str) -> SaleView:
    [view] = sale_views(session, [_sale(session, terminal, external_id)])
    return view


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
