"""The record of a sale: written exactly once per (store, external_id), its lines, what returns
took back. The till's flow around it (pricing, points, tiers) is loyalty/checkout."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, selectinload

from loyalty.db import UPSERT_INSERT
from loyalty.errors import InvalidInput
from loyalty.idempotency import CLIENT_ID
from loyalty.sales.errors import SaleClosed, UnknownSale
from loyalty.sales.models import Sale, SaleLine, SaleReturn, SaleStatus

_sales = cast("Table", Sale.__table__)
_INSERT_SALE_ONCE = {
    name: dialect_insert(_sales)
    .on_conflict_do_nothing(index_elements=["store_id", "external_id"])
    .returning(_sales.c.id)
    for name, dialect_insert in UPSERT_INSERT.items()
}
_INSERT_LINES = insert(cast("Table", SaleLine.__table__))
_SAVE_RESULT = update(_sales).where(_sales.c.id == bindparam("sale_id"))


def insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert the sale unless its (store, external_id) exists: the id, or None for a replay.

    ON CONFLICT DO NOTHING makes exactly-once one statement: on PostgreSQL a racing insert of
    the same id waits for the first to commit and then inserts nothing; SQLite's write lock
    serialises the two.
    """
    connection = session.connection()
    statement = _INSERT_SALE_ONCE[connection.dialect.name]
    sale_id = connection.execute(statement, values).scalar_one_or_none()
    return None if sale_id is None else int(sale_id)


def insert_lines(session: Session, rows: list[dict[str, Any]]) -> None:
    session.connection().execute(_INSERT_LINES, rows)


def save_result(session: Session, sale_id: int, result: dict[str, Any]) -> None:
    session.connection().execute(_SAVE_RESULT, {"sale_id": sale_id, "result": result})


def store_sale(session: Session, store_id: int, external_id: str) -> Sale | None:
    return session.scalars(
        select(Sale).where(Sale.store_id == store_id, Sale.external_id == external_id)
    ).first()


def find_sale(session: Session, store_id: int, external_id: str, *, lock: bool = False) -> Sale:
    """The store's sale with this id: another store's sales do not exist for this store's
    terminals. With `lock`, locked against a concurrent return or void of the same sale
    (PostgreSQL; on SQLite the write transaction already excludes them)."""
    if not CLIENT_ID.match(external_id):
        raise UnknownSale(external_id)  # no sale can have such an id; spare the database
    query = select(Sale).where(Sale.store_id == store_id, Sale.external_id == external_id)
    sale = session.scalars(query.with_for_update() if lock else with_lines(query)).first()
    if sale is None:
        raise UnknownSale(external_id)
    return sale


def find_return(session: Session, sale_id: int, external_id: str) -> SaleReturn | None:
    return session.scalars(
        select(SaleReturn).where(
            SaleReturn.sale_id == sale_id, SaleReturn.external_id == external_id
        )
    ).first()


def paid_still_kept(sale: Sale) -> int:
    """What was paid for the goods not returned, rounded down to a minor unit per line."""
    return sum(
        (line.amount - line.discount) * (line.quantity - line.returned_quantity) // line.quantity
        for line in sale.lines
    )


def refuse_closed(sale: Sale) -> None:
    if sale.status == SaleStatus.RETURNED:
        raise SaleClosed(f"sale {sale.external_id!r} has been returned in full already")
    if sale.status == SaleStatus.VOIDED:
        raise SaleClosed(f"sale {sale.external_id!r} has been voided")


def mark_returned(sale: Sale, lines: list[tuple[str, int]]) -> None:
    """Count (sku, quantity) as returned on the sale's lines, first line of a SKU first."""
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
    """A sale as it stands now, returns included: for a receipt look-up at the till and for
    the member's own record."""

    external_id: str
    store_id: int
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


def sale_views(session: Session, sales: Iterable[Sale]) -> list[SaleView]:
    """The sales as they stand, their returns read in one query (their lines must be loaded:
    `with_lines`)."""
    found = list(sales)
    returns: dict[int, list[ReturnRef]] = {sale.id: [] for sale in found}
    if found:
        for row in session.scalars(
            select(SaleReturn).where(SaleReturn.sale_id.in_(list(returns))).order_by(SaleReturn.id)
        ):
            returns[row.sale_id].append(
                ReturnRef(row.external_id, row.points_reversed, row.points_restored, row.created_at)
            )
    return [
        SaleView(
            external_id=sale.external_id,
            store_id=sale.store_id,
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
            returns=tuple(returns[sale.id]),
        )
        for sale in found
    ]


def with_lines(query: Select[Sale]) -> Select[Sale]:
    """A query of sales that loads their lines with them (one more query in all, not one per
    sale)."""
    return query.options(selectinload(Sale.lines))
