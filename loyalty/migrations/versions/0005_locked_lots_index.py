"""a partial index of locked (pending) lots per member: balances as of now, the unlock job

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_point_lots_member_id_unlocks_at_locked",
        "point_lots",
        ["member_id", "unlocks_at"],
        unique=False,
        postgresql_where=sa.text("unlocked IS false"),
        sqlite_where=sa.text("unlocked IS 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_point_lots_member_id_unlocks_at_locked", table_name="point_lots")
