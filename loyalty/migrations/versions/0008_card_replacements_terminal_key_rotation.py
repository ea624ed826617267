"""cards.replaced_by_id (a card is replaced once), terminals' previous key during a rotation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by_id", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_cards_replaced_by_id_cards"), "cards", ["replaced_by_id"], ["id"]
        )
    # the replacements made before: the audit log names each card's successor
    audit = sa.table(
        "audit_log",
        sa.column("action"),
        sa.column("subject_id"),
        sa.column("details", sa.JSON()),
    )
    cards = sa.table("cards", sa.column("id"), sa.column("replaced_by_id"))
    connection = op.get_bind()
    for subject_id, details in connection.execute(
        sa.select(audit.c.subject_id, audit.c.details).where(audit.c.action == "card.replace")
    ):
        connection.execute(
            cards.update()
            .where(cards.c.id == int(subject_id))
            .values(replaced_by_id=details["replaced_by"])
        )
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_key_valid_until", loyalty.db.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("rotated_at", loyalty.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_column("rotated_at")
        batch_op.drop_column("previous_key_valid_until")
        batch_op.drop_column("previous_key_hash")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cards_replaced_by_id_cards"), type_="foreignkey")
        batch_op.drop_column("replaced_by_id")
