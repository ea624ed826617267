"""Fault injection under a load of sales (issue 8): nothing the till saw committed is lost or
doubled when a worker dies, PostgreSQL restarts or freezes, or Redis stops.

    .venv/bin/python bench/faults.py --tills 8 --phase-seconds 8

1. starts a PostgreSQL cluster and a Redis of its own on free ports (never the shared ones;
   the cluster runs as the `postgres` user when this runs as root), migrates and seeds a store,
   one terminal per till and a few hundred members with a card and points;
2. starts gunicorn (`-k sync -w 2`) on them;
3. runs one thread per till, each committing 5-line sales one after another (a fifth of them
   redeem points). A sale that gets no answer, or an answer other than 2xx or a refusal (4xx),
   is sent again with the same body and `external_id` until it is answered, the way a till's
   store-and-forward client does;
4. while the tills sell, goes through the phases: steady, a worker killed (SIGKILL), PostgreSQL
   restarted, PostgreSQL frozen (SIGSTOP) for a while then thawed, Redis stopped then started,
   Redis frozen then thawed, steady again; counts every answer by status in the phase it came in,
   with its slowest answer;
5. proves: every sale a till saw committed is in the database exactly once, with exactly one
   earning entry; the database holds no sale the tills were not told about; `loyalty
   check-ledger` is clean. Exits 1 when any of that fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))

from till import (  # noqa: E402 - bench modules run as scripts
    BENCH_CARD_KEY,
    ServerConfig,
    gunicorn,
    run_check_ledger,
    seed,
)

from loyalty.db import make_engine  # noqa: E402
from loyalty.ledger.models import EntryKind, PointEntry  # noqa: E402
from loyalty.sales.models import Sale  # noqa: E402
from tests.private_services import (  # noqa: E402
    PrivatePostgres,
    PrivateRedis,
    _children,
    postgres_bin,
)

SKUS = [("milk", "dairy"), ("bread", "bakery"), ("apples", "fruit"), ("soap", "household")]
RETRY_PAUSE = 0.2


@dataclass
class Phase:
    name: str
    statuses: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0


@dataclass
class Tally:
    """What the tills saw, phase by phase; shared by the till threads under one lock."""

    phases: list[Phase] = field(default_factory=list)
    confirmed: dict[str, int] = field(default_factory=dict)  # external id -> status
    refused: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, name: str) -> None:
        with self.lock:
            self.phases.append(Phase(name))
        print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)

    def answer(self, status: str, seconds: float) -> None:
        with self.lock:
            phase = self.phases[-1]
            phase.statuses[status] += 1
            phase.slowest = max(phase.slowest, seconds)


def sale_body(external_id: str, code: str) -> bytes:
    lines = [
        {
            "sku": sku,
            "category": category,
            "quantity": random.randint(1, 3),
            "unit_price": random.randint(199, 1999),
        }
        for sku, category in random.choices(SKUS, k=5)
    ]
    redeem = 100 if random.random() < 0.2 else 0
    return json.dumps(
        {
            "external_id": external_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "code": code,
            "lines": lines,
            "redeem_points": redeem,
        }
    ).encode()


def till(
    number: int,
    *,
    port: int,
    key: str,
    codes: list[str],
    nonce: str,
    tally: Tally,
    stop: threading.Event,
    give_up_after: float,
) -> None:
    """Sell until told to stop; a sale is sent until it is answered, then the next one."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    connection: http.client.HTTPConnection | None = None
    sale = 0
    while not stop.is_set():
        sale += 1
        external_id = f"{nonce}-{number}-{sale}"
        body = sale_body(external_id, random.choice(codes))
        first_try = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", "/api/v1/pos/transactions", body, headers)
                reply = connection.getresponse()
                reply.read()
                status = reply.status
                tally.answer(str(status), time.monotonic() - started)
            except (OSError, http.client.HTTPException) as exc:
                tally.answer(type(exc).__name__, time.monotonic() - started)
                if connection is not None:
                    connection.close()
                connection = None
                status = 0
            if 200 <= status < 300:
                with tally.lock:
                    tally.confirmed[external_id] = status
                break
            if 400 <= status < 500 and status not in (408, 429):
                with tally.lock:
                    tally.refused[external_id] = status
                break
            if time.monotonic() - first_try > give_up_after:
                print(f"till {number}: gave up on {external_id}", flush=True)
                break
            time.sleep(RETRY_PAUSE)
    if connection is not None:
        connection.close()


def kill_a_worker(master_pid: int) -> None:
    workers = _children(master_pid)
    if workers:
        os.kill(workers[0], signal.SIGKILL)


def paused(seconds: float, action: Callable[[], None], undo: Callable[[], None]) -> None:
    action()
    try:
        time.sleep(seconds)
    finally:
        undo()


def verify(url: str, nonce: str, tally: Tally) -> list[str]:
    """What went wrong, if anything: a confirmed sale missing or doubled, a sale nobody was
    told about, a sale without exactly one earning entry."""
    engine = make_engine(url)
    problems: list[str] = []
    with engine.connect() as conn:
        stored = Counter(
            conn.scalars(select(Sale.external_id).where(Sale.external_id.like(f"{nonce}-%")))
        )
        earning = dict(
            conn.execute(
                select(Sale.external_id, func.count(PointEntry.id))
                .join(PointEntry, PointEntry.sale_id == Sale.id)
                .where(Sale.external_id.like(f"{nonce}-%"), PointEntry.kind == EntryKind.EARN)
                .group_by(Sale.external_id)
            ).all()
        )
    engine.dispose()
    confirmed = set(tally.confirmed)
    missing = confirmed - set(stored)
    doubled = [external_id for external_id, times in stored.items() if times > 1]
    unknown = set(stored) - confirmed
    wrong_earn = [e for e in confirmed & set(stored) if earning.get(e, 0) != 1]
    for label, found in (
        ("confirmed but not in the database", missing),
        ("stored more than once", doubled),
        ("in the database but never confirmed to a till", unknown),
        ("without exactly one earning entry", wrong_earn),
    ):
        if found:
            problems.append(f"{len(found)} sales {label}: {sorted(found)[:5]}")
    print(
        f"\nsales confirmed to the tills: {len(confirmed)}; refused (4xx): {len(tally.refused)}; "
        f"in the database: {sum(stored.values())} ({len(stored)} distinct external ids)"
    )
    return problems


def print_phases(tally: Tally) -> None:
    statuses = sorted({s for phase in tally.phases for s in phase.statuses})
    width = max(len(phase.name) for phase in tally.phases)
    print(f"\n{'phase':<{width}} " + " ".join(f"{s:>9}" for s in statuses) + "  slowest")
    for phase in tally.phases:
        counts = " ".join(f"{phase.statuses.get(s, 0):>9}" for s in statuses)
        print(f"{phase.name:<{width}} {counts}  {phase.slowest:6.2f} s")
    refusals = Counter(tally.refused.values())
    if refusals:
        print(f"refusals by status: {dict(refusals)} (not retried: a till shows them)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tills", type=int, default=8, help="till threads (default 8)")
    parser.add_argument(
        "--phase-seconds", type=float, default=8.0, help="length of each phase (default 8)"
    )
    parser.add_argument(
        "--freeze-seconds",
        type=float,
        default=8.0,
        help="how long PostgreSQL and Redis stay frozen (default 8)",
    )
    parser.add_argument("--members", type=int, default=300, help="members seeded (default 300)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if postgres_bin() is None:
        print("PostgreSQL's server binaries (initdb, pg_ctl) are not installed", file=sys.stderr)
        return 2
    nonce = f"f{secrets.token_hex(4)}"
    with PrivatePostgres() as pg, PrivateRedis() as redis_server:
        print(f"private PostgreSQL on port {pg.port}, Redis on port {redis_server.port}")
        seeded = seed(
            pg.url,
            tills=args.tills,
            members=args.members,
            points=5000,
            card_key=BENCH_CARD_KEY,
            with_services=False,
        )
        env = {
            "LOYALTY_DATABASE_URL": pg.url,
            "LOYALTY_REDIS_URL": redis_server.url,
            "LOYALTY_CARD_KEY": BENCH_CARD_KEY,
            "LOYALTY_SECRET_KEY": secrets.token_hex(16),
        }
        config = ServerConfig("sync", 2, 1)
        tally = Tally()
        stop = threading.Event()
        with gunicorn(
            "server.wsgi:app", config, env=env, chdir=PROJECT_ROOT, log_name="faults-gunicorn"
        ) as (base_url, master_pid):
            port = int(base_url.rsplit(":", 1)[1])
            tally.enter("steady")
            threads = [
                threading.Thread(
                    target=till,
                    args=(number,),
                    kwargs={
                        "port": port,
                        "key": seeded.keys[number],
                        "codes": seeded.codes,
                        "nonce": nonce,
                        "tally": tally,
                        "stop": stop,
                        "give_up_after": 120.0,
                    },
                    daemon=True,
                )
                for number in range(args.tills)
            ]
            for thread in threads:
                thread.start()
            wait = args.phase_seconds
            time.sleep(wait)

            tally.enter("worker killed (SIGKILL)")
            kill_a_worker(master_pid)
            time.sleep(wait)

            tally.enter("PostgreSQL restarting")
            pg.restart()
            tally.enter("PostgreSQL restarted")
            time.sleep(wait)

            tally.enter(f"PostgreSQL frozen {args.freeze_seconds:g} s")
            paused(args.freeze_seconds, pg.freeze, pg.thaw)
            tally.enter("PostgreSQL thawed")
            time.sleep(wait)

            tally.enter("Redis stopped")
            paused(wait, redis_server.stop, redis_server.start)
            tally.enter("Redis started again")
            time.sleep(wait)

            tally.enter(f"Redis frozen {args.freeze_seconds:g} s")
            paused(args.freeze_seconds, redis_server.freeze, redis_server.thaw)
            tally.enter("steady again")
            time.sleep(wait)

            stop.set()
            tally.enter("tills finishing their last sale")
            for thread in threads:
                thread.join(timeout=180)
        print_phases(tally)
        problems = verify(pg.url, nonce, tally)
        status, output = run_check_ledger(pg.url)
        print(f"\n$ loyalty check-ledger\n{output}\n(exit {status})")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not problems and status == 0:
        print("every sale the tills saw committed is stored exactly once; the ledger is clean")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
