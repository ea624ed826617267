"""Reading back what a till recorded: a sale as it stands now, and the first answer of a return
or a void. A terminal reads its own store's sales only."""

from __future__ import annotations

from sqlalchemy.orm import Session

from loyalty.checkout.results import ReturnResult, VoidResult
from loyalty.errors import NotFound
from loyalty.results import restored
from loyalty.sales.services import SaleView, find_return, find_sale, sale_views
from loyalty.stores.models import TerminalLike


def read_sale(session: Session, terminal: TerminalLike, external_id: str) -> SaleView:
    [view] = sale_views(session, [find_sale(session, terminal.store_id, external_id)])
    return view


def read_return(
    session: Session, terminal: TerminalLike, sale_external_id: str, external_id: str
) -> ReturnResult:
    sale = find_sale(session, terminal.store_id, sale_external_id)
    found = find_return(session, sale.id, external_id)
    if found is None:
        raise NotFound(f"sale {sale_external_id!r} has no return {external_id!r}", field="return")
    return restored(found.result, ReturnResult)


def read_void(session: Session, terminal: TerminalLike, sale_external_id: str) -> VoidResult:
    sale = find_sale(session, terminal.store_id, sale_external_id)
    if sale.void_result is None:
        raise NotFound(f"sale {sale_external_id!r} has not been voided", field="external_id")
    return restored(sale.void_result, VoidResult)
