"""In-process cost of one till call: CPU time, SQL round trips and where the time goes.

    .venv/bin/python bench/profile_calls.py [--calls 2000] [--profile sale]

Runs the app inside this process (Flask's test client, one thread: no gunicorn, no wrk) against a
fresh PostgreSQL database seeded as bench/till.py seeds one, and prints per call kind: CPU
milliseconds of this process per call (the app's share of the CPU; PostgreSQL's is not in it),
wall milliseconds, and the statements sent to PostgreSQL per call, pool_pre_ping's "SELECT 1"
included (as PING). CPU time depends far less on how busy the machine is than throughput, so
these figures show what a change to the code saves. With --profile KIND, cProfile (timing CPU)
prints the top functions for that call kind.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import bare_flask
import till
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from loyalty.settings import load_settings
from server.app import create_app
from server.core.extensions import db

DATABASE = f"loyalty_bench_profile_{os.getpid()}"
KINDS = ("bare", "identify", "sale", "redeem")
SKUS = ["MILK-1L", "BREAD-WH", "COFFEE-500", "APPLES-1KG", "WINE-RED", "CHEESE-CHD"]


def _sale_body(code: str, external_id: str, redeem: int) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "occurred_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "code": code,
        "lines": [
            {
                "sku": sku,
                "category": "grocery",
                "quantity": random.randint(1, 3),
                "unit_price": random.randint(199, 1999),
            }
            for sku in random.sample(SKUS, 5)
        ],
        "redeem_points": redeem,
    }


def count_statements(engine: Engine, into: Counter[str]) -> None:
    """Count what is sent to PostgreSQL, by its first word; COMMIT and the pre-ping too."""

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        into[statement.split(None, 1)[0].upper()] += 1

    @event.listens_for(engine, "commit")
    def _commit(_conn: Any) -> None:
        into["COMMIT"] += 1

    ping = engine.dialect.do_ping

    def _ping(dbapi_connection: Any) -> bool:
        into["PING"] += 1
        return bool(ping(dbapi_connection))

    engine.dialect.do_ping = _ping  # type: ignore[method-assign]


class Caller:
    """Makes one call of a kind through the test client; returns the status code."""

    def __init__(self, app: Flask, key: str, codes: list[str]) -> None:
        self.client: FlaskClient = app.test_client()
        self.bare: FlaskClient = bare_flask.app.test_client()
        self.headers = {"Authorization": f"Bearer {key}"}
        self.codes = codes
        self.nonce = secrets.token_hex(3)
        self.counter: Iterator[int] = iter(range(10**9))

    def __call__(self, kind: str) -> int:
        code = random.choice(self.codes)
        if kind == "bare":
            return self.bare.post("/echo", json={"code": code}).status_code
        if kind == "identify":
            return self.client.post(
                "/api/v1/pos/identify", json={"code": code}, headers=self.headers
            ).status_code
        external_id = f"p{self.nonce}-{next(self.counter)}"
        body = _sale_body(code, external_id, 300 if kind == "redeem" else 0)
        return self.client.post(
            "/api/v1/pos/transactions", json=body, headers=self.headers
        ).status_code


def measure(call: Caller, statements: Counter[str], calls: int) -> None:
    print(f"{'call':<10} {'cpu ms':>7} {'wall ms':>8} {'SQL/call':>9}  statements per call")
    for kind in KINDS:
        for _ in range(50):  # warm up: compiled SQL, prepared statements, pool
            call(kind)
        statements.clear()
        status: Counter[int] = Counter()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            status[call(kind)] += 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per_call = ", ".join(f"{name} {n / calls:g}" for name, n in statements.most_common())
        print(
            f"{kind:<10} {1000 * cpu / calls:>7.2f} {1000 * wall / calls:>8.2f} "
            f"{sum(statements.values()) / calls:>9.1f}  {per_call}  statuses {dict(status)}"
        )


def show_sql(engine: Engine, call: Callable[[], int]) -> None:
    """Print the statements one call sends, in order (what a change to the hot path must cut)."""
    sent: list[str] = []

    def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", _statement)
    try:
        status = call()
    finally:
        event.remove(engine, "before_cursor_execute", _statement)
    print(f"\nstatements of one call (status {status}):")
    for number, statement in enumerate(sent, start=1):
        print(f"{number:>3}. {statement[:300]}")


def profile(call: Callable[[], int], calls: int, top: int, out: str | None = None) -> None:
    profiler = cProfile.Profile(time.process_time)  # CPU time: what limits a 2-core machine
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    if out:
        profiler.dump_stats(out)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="calls per kind")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--profile", choices=KINDS, default=None, help="cProfile this call kind")
    parser.add_argument(
        "--show-sql", choices=KINDS, default=None, help="print the statements of one call"
    )
    parser.add_argument("--top", type=int, default=40, help="functions listed by --profile")
    parser.add_argument(
        "--profile-out", default=None, help="also write --profile's statistics to this file"
    )
    parser.add_argument("--admin-url", default=till.ADMIN_URL)
    parser.add_argument(
        "--rules", action="store_true", help="with the 20 rules and 4 tiers of bench/till.py"
    )
    args = parser.parse_args(argv)

    url = till.fresh_database(args.admin_url, DATABASE)
    stack = contextlib.ExitStack()
    try:
        seeded = till.seed(
            url,
            tills=1,
            members=args.members,
            points=10**9,
            card_key=till.BENCH_CARD_KEY,
            with_services=False,
        )
        settings = load_settings(
            {
                "LOYALTY_DATABASE_URL": url,
                "LOYALTY_CARD_KEY": till.BENCH_CARD_KEY,
                "LOYALTY_SECRET_KEY": secrets.token_hex(16),
            }
        )
        app = create_app(settings)
        program = till.rule_program(url) if args.rules else contextlib.nullcontext()
        stack.enter_context(program)
        statements: Counter[str] = Counter()
        with app.app_context():
            count_statements(db.engine, statements)
        call = Caller(app, seeded.keys[0], seeded.codes)
        measure(call, statements, args.calls)
        if args.show_sql:
            with app.app_context():
                show_sql(db.engine, lambda: call(args.show_sql))
        if args.profile:
            kind = args.profile
            profile(lambda: call(kind), args.calls, args.top, args.profile_out)
        with app.app_context():
            db.engine.dispose()
        stack.close()
    finally:
        till.drop_database(args.admin_url, DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
