"""Imports every model so that the metadata is complete (Alembic, create_all in tests)."""

from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card, CardBatch
from loyalty.db import Base
from loyalty.ledger.models import LotDraw, PointAccount, PointEntry, PointLot
from loyalty.members.models import Member
from loyalty.program import Program
from loyalty.sales.models import Sale, SaleLine, SaleReturn
from loyalty.stores.models import Store, Terminal

__all__ = [
    "AuditEntry",
    "Base",
    "Card",
    "CardBatch",
    "LotDraw",
    "Member",
    "PointAccount",
    "PointEntry",
    "PointLot",
    "Program",
    "Sale",
    "SaleLine",
    "SaleReturn",
    "Store",
    "Terminal",
]
