"""Tier review benchmark: the periodic review (`loyalty tiers review`) over many members on
PostgreSQL.

    .venv/bin/python bench/tier_review.py                    # 1,000,000 members
    .venv/bin/python bench/tier_review.py --members 100000

1. creates a fresh database `loyalty_bench_review` on --admin-url (dropped at the end) and
   migrates it like `loyalty migrate`; adds 4 tiers (50.00, 200.00, 500.00, 1,000.00 of spend);
2. seeds set-based with generate_series: every member has one sale in the last 300 days of
   0.00-1,199.99, and every 4th member already holds a tier (any of the four) since 100 days;
3. times two reviews, each in one transaction as the command runs it: the first finds most
   members a first tier and some below theirs (grace starts); the second, 31 days later, ends
   those grace periods in downgrades and changes little else: the steady state of a daily run;
4. prints members, what each review did and its seconds.

A figure, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from till import drop_database, fresh_database

from loyalty import migrate
from loyalty.db import make_engine, session_scope
from loyalty.program import ensure_program, get_program
from loyalty.tiers.services import create_tier, review_tiers

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "loyalty_bench_review"
RUN_AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
TIERS = (("BRONZE", 1, 5_000), ("SILVER", 2, 20_000), ("GOLD", 3, 50_000), ("PLAT", 4, 100_000))

SEED = (
    """
    INSERT INTO members (id, name, email, status, created_at)
    SELECT g, 'Member ' || g, 'm' || g || '@bench.example', 'active', :at
    FROM generate_series(1, :members) AS g
    """,
    "INSERT INTO stores (id, code, name, created_at) VALUES (1, 'BENCH', 'Bench', :at)",
    """
    INSERT INTO terminals (id, store_id, name, key_id, key_hash, created_at)
    VALUES (1, 1, 'bench', 'bench', 'unused', :at)
    """,
    """
    INSERT INTO sales (store_id, terminal_id, external_id, request_hash, member_id, card_id,
        occurred_at, recorded_at, currency, subtotal, discount_total, total, kept_total,
        points_earned, points_redeemed, points_reversed, status, result)
    SELECT 1, 1, 's' || g, 'bench', g, NULL, :at - (g % 300) * interval '1 day', :at, 'EUR',
        g % 120000, 0, g % 120000, g % 120000, g % 1200, 0, 0, 'completed', '{}'
    FROM generate_series(1, :members) AS g
    """,
    """
    INSERT INTO member_tiers (member_id, tier_id, since)
    SELECT g, (SELECT id FROM tiers WHERE rank = 1 + g % 4), :at - interval '100 days'
    FROM generate_series(4, :members, 4) AS g
    """,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args(argv)
    url = fresh_database(args.admin_url, DATABASE)
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            ensure_program(session, RUN_AT)
            for code, rank, threshold in TIERS:
                create_tier(
                    session,
                    code=code,
                    name=code.title(),
                    rank=rank,
                    threshold=threshold,
                    actor="cli:bench",
                    now=RUN_AT,
                )
        started = time.perf_counter()
        with engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement), {"members": args.members, "at": RUN_AT})
            connection.execute(text("ANALYZE"))
        print(f"seeded {args.members:,} members in {time.perf_counter() - started:.1f} s")
        for label, at in (("first review", RUN_AT), ("31 days later", RUN_AT + timedelta(31))):
            started = time.perf_counter()
            with session_scope(engine) as session:
                report = review_tiers(session, get_program(session), at)
            seconds = time.perf_counter() - started
            print(
                f"{label}: {seconds:.1f} s; upgraded {report.upgraded:,}, grace started "
                f"{report.grace_started:,}, downgraded {report.downgraded:,}, floors ended "
                f"{report.floors_ended:,}"
            )
        engine.dispose()
    finally:
        drop_database(args.admin_url, DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
