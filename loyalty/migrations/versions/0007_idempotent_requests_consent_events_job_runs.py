"""idempotent_requests (for every write taking an Idempotency-Key, replacing
adjustment_requests), consent_events, members.updated_at, job_runs; results kept for replays
in the typed results' shape

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loyalty.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fingerprint(body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotent_requests() -> None:
    table = op.create_table(
        "idempotent_requests",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", loyalty.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
        sa.UniqueConstraint(
            "owner", "idempotency_key", name=op.f("uq_idempotent_requests_owner_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_idempotent_requests_member_id"), "idempotent_requests", ["member_id"]
    )
    old = sa.table(
        "adjustment_requests",
        sa.column("owner"),
        sa.column("idempotency_key"),
        sa.column("member_id"),
        sa.column("result", sa.JSON()),
        sa.column("created_at", loyalty.db.UtcDateTime(timezone=True)),
    )
    rows = []
    for owner, key, member_id, result, created_at in op.get_bind().execute(
        sa.select(
            old.c.owner, old.c.idempotency_key, old.c.member_id, old.c.result, old.c.created_at
        ).where(old.c.result.is_not(None))
    ):
        request = {k: result[k] for k in ("member_id", "points", "reason")}
        rows.append(
            {
                "owner": owner,
                "idempotency_key": key,
                "operation": "adjustment",
                # the fingerprint loyalty.idempotency.once computes for the same request
                "request_hash": _fingerprint({"operation": "adjustment", "request": request}),
                "result": result,
                "member_id": member_id,
                "created_at": created_at,
            }
        )
    if rows:
        op.bulk_insert(table, rows)
    op.drop_table("adjustment_requests")


def _consent_events() -> None:
    table = op.create_table(
        "consent_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("at", loyalty.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_consent_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index("ix_consent_events_member_id_id", "consent_events", ["member_id", "id"])
    members = sa.table(
        "members",
        sa.column("id"),
        sa.column("email_consent_at", loyalty.db.UtcDateTime(timezone=True)),
        sa.column("sms_consent_at", loyalty.db.UtcDateTime(timezone=True)),
    )
    # consents given before this history was kept, as the members' rows record them
    for channel, column in (("email", members.c.email_consent_at), ("sms", members.c.sms_consent_at)):
        op.execute(
            table.insert().from_select(
                ["member_id", "channel", "granted", "source", "at"],
                sa.select(
                    members.c.id,
                    sa.literal(channel),
                    sa.true(),
                    sa.literal("migration 0007"),
                    column,
                ).where(column.is_not(None)),
            )
        )


def _typed_results() -> None:
    """Sales recorded before now keep their first answer in the old shape; a replay reads it
    back into the typed result, so bring it to that shape: a tier now shows its threshold and
    perks, and a coupon that did not apply says why in a machine-readable `reason` (`unknown`:
    no coupon could apply before coupons existed) with the words in `message`."""
    connection = op.get_bind()
    sales = sa.table("sales", sa.column("id"), sa.column("result", sa.JSON()))
    tiers = {
        code: {"threshold": threshold, "perks": perks}
        for code, threshold, perks in connection.execute(
            sa.text("SELECT code, threshold, perks FROM tiers")
        )
    }
    if connection.dialect.name == "postgresql":
        needs = sa.text(
            "SELECT id FROM sales WHERE json_typeof(result->'tier') = 'object' "
            "OR json_array_length(result->'coupons') > 0"
        )
    else:
        needs = sa.text(
            "SELECT id FROM sales WHERE json_type(result, '$.tier') = 'object' "
            "OR json_array_length(result, '$.coupons') > 0"
        )
    ids = [row[0] for row in connection.execute(needs)]
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        for sale_id, result in connection.execute(
            sa.select(sales.c.id, sales.c.result).where(sales.c.id.in_(batch))
        ):
            changed = dict(result)
            tier = changed.get("tier")
            if isinstance(tier, dict) and "perks" not in tier:
                known = tiers.get(tier.get("code"), {"threshold": 0, "perks": ""})
                changed["tier"] = {**tier, **known}
            changed["coupons"] = [
                coupon
                if "message" in coupon
                else {**coupon, "reason": "unknown", "message": coupon.get("reason")}
                for coupon in changed.get("coupons", [])
            ]
            connection.execute(
                sales.update().where(sales.c.id == sale_id).values(result=changed)
            )


def upgrade() -> None:
    _typed_results()
    _idempotent_requests()
    _consent_events()
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("updated_at", loyalty.db.UtcDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE members SET updated_at = created_at")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.alter_column(
            "updated_at", existing_type=loyalty.db.UtcDateTime(timezone=True), nullable=False
        )
    op.create_table(
        "job_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("started_at", loyalty.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_name_id", "job_runs", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_name_id", table_name="job_runs")
    op.drop_table("job_runs")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
    op.drop_index("ix_consent_events_member_id_id", table_name="consent_events")
    op.drop_table("consent_events")
    op.create_table(
        "adjustment_requests",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", loyalty.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_adjustment_requests_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustment_requests")),
        sa.UniqueConstraint(
            "owner", "idempotency_key", name=op.f("uq_adjustment_requests_owner_idempotency_key")
        ),
    )
    op.drop_index(op.f("ix_idempotent_requests_member_id"), table_name="idempotent_requests")
    op.drop_table("idempotent_requests")  # keys of other operations have no older home
