"""Coupon benchmark (issue 9): a million unique codes for one offer on PostgreSQL, and coupon
validations per second through the API.

    .venv/bin/python bench/coupons.py --codes 1000000 --seconds 10 --tills 8

1. a fresh PostgreSQL database `loyalty_bench_coupons` (dropped at the end): migrated, one offer;
2. makes --codes unique 10-character codes for it the way the job does (batches of 20,000,
   COPY into a temporary table, INSERT … ON CONFLICT DO NOTHING, a commit per batch) and prints
   the seconds, the rate and the process's peak memory before and after (flat: a batch at a
   time);
3. starts gunicorn (`-k sync -w 2`) and has --tills threads quote a 5-line basket with one of
   those codes (a random one each time) for --seconds: validations per second and p99.

The committed-sales cost of a coupon is measured by bench/till.py's `sales+coupons` scenario.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import resource
import secrets
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))

from till import (  # noqa: E402 - bench modules run as scripts
    ADMIN_URL,
    BENCH_CARD_KEY,
    ServerConfig,
    drop_database,
    fresh_database,
    gunicorn,
    seed,
)

from loyalty.coupons.codes import CodeSpec  # noqa: E402
from loyalty.coupons.models import Coupon  # noqa: E402
from loyalty.coupons.offers import create_offer  # noqa: E402
from loyalty.coupons.services import generate_codes, request_codes  # noqa: E402
from loyalty.db import make_engine, session_scope  # noqa: E402

DATABASE = "loyalty_bench_coupons"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_codes(url: str, count: int) -> list[str]:
    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        offer = create_offer(
            session,
            {"name": "bench", "kind": "percent_off", "value": 10, "uses_per_coupon": 1_000_000},
            actor="bench",
            now=now,
        )
        batch = request_codes(session, offer.id, CodeSpec(length=10), count, actor="bench", now=now)
    before = peak_mb()
    started = time.perf_counter()
    with session_scope(engine) as session:
        done = generate_codes(
            session, batch.id, lambda: datetime.now(UTC), checkpoint=session.commit
        )
    seconds = time.perf_counter() - started
    with session_scope(engine) as session:
        stored = session.scalar(select(func.count()).select_from(Coupon))
        distinct = session.scalar(select(func.count(func.distinct(Coupon.key))))
        sample = list(session.scalars(select(Coupon.code).order_by(func.random()).limit(5000)))
    engine.dispose()
    print(
        f"{done.made:,} codes in {seconds:.1f} s ({done.made / seconds:,.0f}/s); stored "
        f"{stored:,}, distinct keys {distinct:,}; peak memory {before:.0f} MB before, "
        f"{peak_mb():.0f} MB after"
    )
    return sample


def validate_load(  # noqa: PLR0917 - the load's settings
    base_url: str,
    key: str,
    member_codes: list[str],
    coupon_codes: list[str],
    tills: int,
    seconds: float,
) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    lines = [
        {"sku": "MILK", "category": "dairy", "quantity": 2, "unit_price": 125},
        {"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price": 250},
        {"sku": "COFFEE", "category": "pantry", "quantity": 1, "unit_price": 899},
        {"sku": "APPLES", "category": "produce", "quantity": 3, "unit_price": 60},
        {"sku": "SOAP", "category": "household", "quantity": 1, "unit_price": 199},
    ]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def till() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        counts: dict[int, int] = {}
        while time.monotonic() < stop:
            body = json.dumps(
                {
                    "code": random.choice(member_codes),
                    "lines": lines,
                    "coupon_codes": [random.choice(coupon_codes)],
                }
            )
            started = time.perf_counter()
            connection.request("POST", "/api/v1/pos/quote", body, headers)
            reply = connection.getresponse()
            answer = json.loads(reply.read())
            mine.append(time.perf_counter() - started)
            counts[reply.status] = counts.get(reply.status, 0) + 1
            if reply.status == 200 and not answer["coupons"][0]["applied"]:
                counts[-1] = counts.get(-1, 0) + 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for status, n in counts.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=till) for _ in range(tills)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0
    refused = statuses.pop(-1, 0)
    print(
        f"coupon validations (quote with one coupon, {tills} tills, {seconds:g} s): "
        f"{len(latencies) / seconds:,.0f}/s, median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99:.1f} ms; statuses {statuses}; coupons refused {refused}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tills", type=int, default=8)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args(argv)
    url = fresh_database(args.admin_url, DATABASE)
    try:
        seeded = seed(
            url, tills=1, members=500, points=0, card_key=BENCH_CARD_KEY, with_services=False
        )
        sample = make_codes(url, args.codes)
        env = {
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_CARD_KEY": BENCH_CARD_KEY,
            "LOYALTY_SECRET_KEY": secrets.token_hex(16),
        }
        with gunicorn(
            "server.wsgi:app", ServerConfig("sync", 2, 1), env=env, chdir=PROJECT_ROOT,
            log_name="coupons-gunicorn",
        ) as (base_url, _pid):  # fmt: skip
            validate_load(base_url, seeded.keys[0], seeded.codes, sample, args.tills, args.seconds)
    finally:
        drop_database(args.admin_url, DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
