"""Importing past transactions from a CSV file, one row per line of a sale.

Columns: external_id, occurred_at (ISO 8601 with offset), code (card, phone or email; empty for
an anonymous sale), sku, category, quantity, unit_price (minor units), redeem_points (on any row
of the sale). Rows of one sale follow each other. Each sale is recorded exactly as the till API
would record it, so importing a file twice changes nothing the second time. The file is UTF-8,
with or without the byte-order mark that spreadsheets write.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from sqlalchemy.exc import DataError

from loyalty.checkout.services import Basket, SaleRequest, record_sale
from loyalty.errors import DomainError
from loyalty.rules.pricing import BasketLine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqlalchemy.orm import Session

    from loyalty.settings import LookupKeys
    from loyalty.stores.models import Terminal

REQUIRED_COLUMNS = {"external_id", "occurred_at", "sku", "quantity", "unit_price"}
MAX_TEXT = 64  # external_id and sku columns
MAX_NUMBER = 2**31 - 1  # quantity, unit_price and redeem_points: far beyond any real sale
ENCODING = "utf-8-sig"  # plain UTF-8 too; a spreadsheet's byte-order mark is dropped


class ImportFileError(ValueError):
    """The file, or one row of it (`row`, counted as a spreadsheet does, the header being 1)."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


@dataclass
class ImportReport:
    recorded: int = 0
    replayed: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (row, external_id, why)


@dataclass(frozen=True)
class _Row:
    number: int
    values: dict[str, str]


def _rows(handle: TextIO) -> Iterator[_Row]:
    reader = csv.DictReader(handle)
    missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
    if missing:
        raise ImportFileError(f"the file lacks the columns: {', '.join(sorted(missing))}")
    for number, values in enumerate(reader, start=2):
        yield _Row(number, {k: (v or "").strip() for k, v in values.items() if k})


def _text(row: _Row, column: str) -> str:
    text = row.values.get(column, "")
    if not text:
        raise ImportFileError(f"{column} is missing", row.number)
    if len(text) > MAX_TEXT:
        raise ImportFileError(f"{column} is longer than {MAX_TEXT} characters", row.number)
    return text


def _int(row: _Row, column: str, default: int | None = None) -> int:
    text = row.values.get(column, "")
    if not text:
        if default is not None:
            return default
        raise ImportFileError(f"{column} is missing", row.number)
    try:
        value = int(text)
    except ValueError as exc:
        raise ImportFileError(f"{column} is not a whole number: {text!r}", row.number) from exc
    if not 0 <= value <= MAX_NUMBER:
        raise ImportFileError(f"{column} must be from 0 to {MAX_NUMBER}: {text!r}", row.number)
    return value


def _sale(rows: list[_Row]) -> SaleRequest:
    first = rows[0]
    external_id = _text(first, "external_id")
    try:
        occurred_at = datetime.fromisoformat(_text(first, "occurred_at"))
    except ValueError as exc:
        raise ImportFileError(f"occurred_at is not an ISO 8601 time: {exc}", first.number) from exc
    if occurred_at.tzinfo is None:
        raise ImportFileError(
            "occurred_at needs a UTC offset, e.g. 2026-03-01T10:15:00+00:00", first.number
        )
    lines = []
    for row in rows:
        sku = _text(row, "sku")
        quantity, unit_price = _int(row, "quantity"), _int(row, "unit_price")
        if quantity == 0:
            raise ImportFileError("quantity must be positive", row.number)
        lines.append(
            BasketLine(
                sku=sku,
                quantity=quantity,
                unit_price=unit_price,
                category=row.values.get("category") or None,
            )
        )
    return SaleRequest(
        external_id=external_id,
        occurred_at=occurred_at,
        basket=Basket(
            lines=lines,
            member_code=first.values.get("code") or None,
            redeem_points=max(_int(r, "redeem_points", 0) for r in rows),
        ),
    )


def count_sales(path: Path) -> int:
    """How many sales the file holds; refuses a file that is not a readable CSV of sales."""
    try:
        with path.open(newline="", encoding=ENCODING) as handle:
            return len({row.values["external_id"] for row in _rows(handle)})
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"the file is not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise ImportFileError(f"the file is not a readable CSV: {exc}") from exc


def import_sales(
    session: Session,
    path: Path,
    *,
    terminal: Terminal,
    keys: LookupKeys,
    now: Callable[[], datetime],
    on_sale: Callable[[], None] = lambda: None,
    checkpoint: Callable[[], None] = lambda: None,
    checkpoint_every: int = 200,
) -> ImportReport:
    """Each sale in a savepoint: a bad sale is reported with its row and skipped, the rest kept.

    `checkpoint` (a commit, from the CLI) runs every `checkpoint_every` sales, so a long import
    never holds the database's write lock for long (SQLite has one for the whole file) and an
    interrupted import keeps what it did; run again, it replays those sales and goes on.
    """
    report = ImportReport()
    done = 0
    first_rows: dict[str, int] = {}
    with path.open(newline="", encoding=ENCODING) as handle:
        for external_id, group in groupby(_rows(handle), key=lambda r: r.values["external_id"]):
            rows = list(group)
            try:
                if external_id in first_rows:
                    raise ImportFileError(  # noqa: TRY301 - reported like every other bad row
                        f"the rows of a sale must follow each other; this sale began at row "
                        f"{first_rows[external_id]}",
                        rows[0].number,
                    )
                first_rows[external_id] = rows[0].number
                with session.begin_nested():
                    recorded = record_sale(
                        session, terminal=terminal, request=_sale(rows), keys=keys, now=now()
                    )
            except (DomainError, ImportFileError, DataError) as exc:
                report.failed.append((_row_of(exc, rows[0].number), external_id, _why(exc)))
            else:
                if recorded.created:
                    report.recorded += 1
                else:
                    report.replayed += 1
            on_sale()
            done += 1
            if done % checkpoint_every == 0:
                checkpoint()
    return report


def _row_of(exc: Exception, default: int) -> int:
    row = exc.row if isinstance(exc, ImportFileError) else None
    return row or default


def _why(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, DataError):  # a value the database cannot hold, caught by no check above
        return f"the database refused a value: {str(exc.orig).strip()}"
    return str(exc)
