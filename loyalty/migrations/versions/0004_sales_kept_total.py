"""sales.kept_total: what was paid for the goods not returned, so that tier qualification reads
sales alone instead of joining every sale line in the window

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kept_total", sa.BigInteger(), server_default="0", nullable=False)
        )
    # Integer division on both databases: the same figure the return service computes.
    op.execute(
        """
        UPDATE sales SET kept_total = COALESCE((
            SELECT SUM((sale_lines.amount - sale_lines.discount)
                       * (sale_lines.quantity - sale_lines.returned_quantity)
                       / sale_lines.quantity)
            FROM sale_lines WHERE sale_lines.sale_id = sales.id
        ), 0)
        """
    )
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.alter_column("kept_total", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_column("kept_total")
