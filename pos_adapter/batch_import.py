"""Importing past transactions from a CSV file, one row per line of a sale.

Columns: external_id, occurred_at (ISO 8601 with offset), code (card, phone or email; empty for
an anonymous sale), sku, category, quantity, unit_price (minor units), redeem_points (on any row
of the sale). Rows of one sale follow each other. Each sale is recorded exactly as the till API
would record it, so importing a file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session

from loyalty.errors import DomainError
from loyalty.members.services import LookupKeys
from loyalty.rules.pricing import BasketLine
from loyalty.sales.services import Basket, SaleRequest, record_sale
from loyalty.stores.models import Terminal

REQUIRED_COLUMNS = {"external_id", "occurred_at", "sku", "quantity", "unit_price"}


class ImportFileError(ValueError):
    pass


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


def _int(row: _Row, column: str, default: int | None = None) -> int:
    text = row.values.get(column, "")
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise ImportFileError(f"{column} is not a whole number: {text!r}") from exc


def _sale(rows: list[_Row]) -> SaleRequest:
    first = rows[0]
    try:
        occurred_at = datetime.fromisoformat(first.values["occurred_at"])
    except ValueError as exc:
        raise ImportFileError(f"occurred_at is not an ISO 8601 time: {exc}") from exc
    if occurred_at.tzinfo is None:
        raise ImportFileError("occurred_at needs a UTC offset, e.g. 2026-03-01T10:15:00+00:00")
    lines = []
    for row in rows:
        quantity, unit_price = _int(row, "quantity"), _int(row, "unit_price")
        if quantity <= 0 or unit_price < 0:
            raise ImportFileError("quantity must be positive and unit_price not negative")
        lines.append(
            BasketLine(
                sku=row.values["sku"], quantity=quantity, unit_price=unit_price,
                category=row.values.get("category") or None,
            )
        )
    return SaleRequest(
        external_id=first.values["external_id"],
        occurred_at=occurred_at,
        basket=Basket(
            lines=lines,
            member_code=first.values.get("code") or None,
            redeem_points=max(_int(r, "redeem_points", 0) for r in rows),
        ),
    )


def count_sales(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return len({row.values["external_id"] for row in _rows(handle)})


def import_sales(
    session: Session,
    path: Path,
    *,
    terminal: Terminal,
    keys: LookupKeys,
    now: Callable[[], datetime],
    on_sale: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Each sale in a savepoint: a bad sale is reported with its row and skipped, the rest kept."""
    report = ImportReport()
    with path.open(newline="", encoding="utf-8") as handle:
        for external_id, group in groupby(_rows(handle), key=lambda r: r.values["external_id"]):
            rows = list(group)
            try:
                with session.begin_nested():
                    recorded = record_sale(
                        session, terminal=terminal, request=_sale(rows), keys=keys, now=now()
                    )
            except (DomainError, ImportFileError) as exc:
                detail = exc.detail if isinstance(exc, DomainError) else str(exc)
                report.failed.append((rows[0].number, external_id, detail))
            else:
                if recorded.created:
                    report.recorded += 1
                else:
                    report.replayed += 1
            on_sale()
    return report
