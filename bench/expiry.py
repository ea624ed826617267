"""Expiry benchmark: ONE run of the expiry job over a million members on PostgreSQL.

    .venv/bin/python bench/expiry.py                      # 1,000,000 members
    .venv/bin/python bench/expiry.py --members 100000 --batch-size 10000

1. creates a fresh database `loyalty_bench_expiry` on --admin-url (dropped at the end unless
   --keep-database) and migrates it like `loyalty migrate`;
2. seeds, set-based with generate_series, what the ledger itself would have written: every
   member has an account and two lots, each with its earn entry, and most have spent part of
   their oldest lot (a redeem entry). The oldest lot of 9 members in 10 expired at the end of
   January 2026; the 10th member's oldest lot and everybody's newer lot have not;
3. checks the ledger (`check_ledger`), then times one `expire_points` run at 1 March 2026,
   committing each batch as `loyalty expire-points` does, and checks the ledger again;
4. prints members, lots and points expired, seconds, and check-ledger's verdict.

A figure, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session
from till import drop_database, fresh_database

from loyalty import migrate
from loyalty.db import make_engine
from loyalty.ledger.jobs import DEFAULT_BATCH_SIZE, expire_points
from loyalty.ledger.services import check_ledger
from loyalty.program import ensure_program

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "loyalty_bench_expiry"
SEEDED_AT = datetime(2026, 2, 20, tzinfo=UTC)
RUN_AT = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)

# Lot A: earned January 2025 (expired at the end of January 2026), or June 2025 for every 10th
# member; lot B: earned November 2025 (lasts through November 2026). The program's default
# policy (end of the month, 12 months later) in UTC. Member i earns 100 + i % 50 points in lot A
# and spends i % 30 of them; lot B holds 50.
SEED = [
    """
    INSERT INTO members (id, name, email, status, created_at)
    SELECT g, 'Member ' || g, NULL, 'active', :seeded_at
    FROM generate_series(1, :members) AS g
    """,
    """
    INSERT INTO point_entries (id, member_id, kind, points, pending_points, reason, actor,
                               created_at)
    SELECT 3 * g - 2, g, 'earn', 100 + g % 50, 0, 'bench', 'bench',
           CASE WHEN g % 10 = 0 THEN timestamptz '2025-06-15 12:00+00'
                ELSE timestamptz '2025-01-15 12:00+00' END
    FROM generate_series(1, :members) AS g
    UNION ALL
    SELECT 3 * g - 1, g, 'earn', 50, 0, 'bench', 'bench', timestamptz '2025-11-15 12:00+00'
    FROM generate_series(1, :members) AS g
    UNION ALL
    SELECT 3 * g, g, 'redeem', -(g % 30), 0, 'bench', 'bench', timestamptz '2025-12-01 12:00+00'
    FROM generate_series(1, :members) AS g WHERE g % 30 > 0
    """,
    """
    INSERT INTO point_lots (id, member_id, entry_id, sale_id, points, remaining, unlocked,
                            unlocks_at, expires_at, created_at)
    SELECT 2 * g - 1, g, 3 * g - 2, NULL::bigint, 100 + g % 50, 100 + g % 50 - g % 30, true,
           e.created_at,
           CASE WHEN g % 10 = 0 THEN timestamptz '2026-07-01 00:00+00'
                ELSE timestamptz '2026-02-01 00:00+00' END,
           e.created_at
    FROM generate_series(1, :members) AS g JOIN point_entries AS e ON e.id = 3 * g - 2
    UNION ALL
    SELECT 2 * g, g, 3 * g - 1, NULL::bigint, 50, 50, true, timestamptz '2025-11-15 12:00+00',
           timestamptz '2026-12-01 00:00+00', timestamptz '2025-11-15 12:00+00'
    FROM generate_series(1, :members) AS g
    """,
    """
    INSERT INTO point_lot_draws (entry_id, lot_id, points)
    SELECT 3 * g, 2 * g - 1, g % 30 FROM generate_series(1, :members) AS g WHERE g % 30 > 0
    """,
    """
    INSERT INTO point_accounts (member_id, available, pending, updated_at)
    SELECT g, 100 + g % 50 - g % 30 + 50, 0, :seeded_at FROM generate_series(1, :members) AS g
    """,
    "SELECT setval(pg_get_serial_sequence('members', 'id'), :members)",
    "SELECT setval(pg_get_serial_sequence('point_entries', 'id'), 3 * :members)",
    "SELECT setval(pg_get_serial_sequence('point_lots', 'id'), 2 * :members)",
]


def seed(url: str, members: int) -> float:
    started = time.perf_counter()
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            ensure_program(session, SEEDED_AT)
            for statement in SEED:
                session.execute(text(statement), {"members": members, "seeded_at": SEEDED_AT})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def verdict(session: Session) -> tuple[str, float]:
    started = time.perf_counter()
    problems = check_ledger(session)
    seconds = time.perf_counter() - started
    if problems:
        return f"{len(problems):,} discrepancies, e.g. {problems[0]}", seconds
    return "ledger is consistent", seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--database-name", default=DATABASE)
    parser.add_argument("--keep-database", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = fresh_database(args.admin_url, args.database_name)
    try:
        seeded = seed(url, args.members)
        print(f"seeded {args.members:,} members, {2 * args.members:,} lots in {seeded:.1f} s")
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                before, _ = verdict(session)
                session.rollback()
                print(f"check-ledger before: {before}")
                batches = 0

                def count_batch(_members: int) -> None:
                    nonlocal batches
                    batches += 1

                started = time.perf_counter()
                done = expire_points(
                    session,
                    RUN_AT,
                    batch_size=args.batch_size,
                    checkpoint=session.commit,
                    on_batch=count_batch,
                )
                session.commit()
                seconds = time.perf_counter() - started
                after, check_seconds = verdict(session)
                session.rollback()
        finally:
            engine.dispose()
        for label, figure in (
            ("members", f"{args.members:,}"),
            ("batch size", f"{args.batch_size:,} ({batches:,} batches)"),
            ("members expired", f"{done.members:,}"),
            ("lots expired", f"{done.lots:,}"),
            ("points expired", f"{-done.points:,}"),
            ("seconds", f"{seconds:.1f} (one expire_points run)"),
            ("check-ledger", f"{after} ({check_seconds:.1f} s)"),
        ):
            print(f"{label + ':':<17}{figure}")
        return 0 if after == "ledger is consistent" and before == after else 1
    finally:
        if not args.keep_database:
            drop_database(args.admin_url, args.database_name)


if __name__ == "__main__":
    sys.exit(main())
