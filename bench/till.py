"""Till benchmark (issue 2): N simulated tills for T seconds against the API on PostgreSQL.

    .venv/bin/python bench/till.py --tills 16 --seconds 15 --baseline

1. prepares a database: a fresh PostgreSQL database `loyalty_bench` (dropped again at the end),
   or the one given by --database-url; migrates it, then adds a store, one terminal per till and
   a few thousand members with a card and starting points;
2. starts gunicorn on 127.0.0.1 (`-k sync -w 2` unless told otherwise; once per setting given),
   unless --url names a server that is already running;
3. runs wrk (bench/till.lua: one wrk thread and connection per till) for each scenario:
   `sales` (identify, then commit a 5-line sale; ~20 % of sales redeem points) and `identify`
   (identify calls only), and with --baseline the same wrk settings against bench/bare_flask.py
   under the same gunicorn settings;
4. prints requests/s, committed sales/s, p50/p95/p99 latency and non-2xx responses per scenario,
   with where the CPU went (app workers, PostgreSQL, wrk);
5. runs `loyalty check-ledger` and compares the sales in the database with the 201s counted;
6. stops the servers it started.

wrk is a closed loop: each till sends its next request as soon as the last one is answered, so
the figures are the most a till fleet of that size can get through, not a latency at a given
arrival rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card, CardStatus
from loyalty.cards.numbers import new_card_number
from loyalty.cards.qr import sign_card
from loyalty.db import make_engine, session_scope
from loyalty.enrolment.services import enrol
from loyalty.ledger.expiry import lot_expiry
from loyalty.ledger.models import EntryKind, PointAccount, PointEntry, PointLot
from loyalty.ledger.services import check_ledger, credit
from loyalty.members.models import Member, MemberStatus
from loyalty.members.services import Enrolment
from loyalty.program import ProgramSettings, ensure_program, get_program
from loyalty.sales.models import Sale
from loyalty.settings import LookupKeys
from loyalty.stores.services import create_store, create_terminal

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "till.lua"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "loyalty_bench"
BENCH_CARD_KEY = "bench-card-key"
ACTOR = "cli:bench"
SCENARIOS = ("sales", "identify", "sales+rules", "sales+coupons")
BENCH_COUPON = "BENCH10"
DEFAULT_SCENARIOS = ("sales", "identify")


# Database


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create `name`, unless someone is connected to it: another bench still running."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        users = conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
        )
        if users:
            admin.dispose()
            msg = (
                f"database {name!r} has {users} connections: is another bench running? "
                "Pass --database-name to use another one."
            )
            raise RuntimeError(msg)
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Seed:
    store_code: str
    keys: list[str]
    codes: list[str]
    seconds: float


def _seed_members_set_based(
    session: Session,
    *,
    program: ProgramSettings,
    store_id: int,
    count: int,
    points: int,
    now: datetime,
) -> list[str]:
    """What `enrol` + `credit` write, as a few multi-row INSERTs: member, account, active card,
    a bonus entry and its lot, the enrolment's audit row. Returns the card numbers."""
    member_ids = list(
        session.scalars(
            insert(Member).returning(Member.id, sort_by_parameter_order=True),
            [
                {
                    "name": f"Bench member {i}",
                    "status": MemberStatus.ACTIVE,
                    "acquisition_source": "bench",
                    "enrolled_store_id": store_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
    )
    numbers: set[str] = set()
    while len(numbers) < count:
        numbers.add(new_card_number())
    card_numbers = sorted(numbers)
    session.execute(
        insert(PointAccount),
        [
            {"member_id": m, "available": points, "pending": 0, "updated_at": now}
            for m in member_ids
        ],
    )
    card_ids = list(
        session.scalars(
            insert(Card).returning(Card.id, sort_by_parameter_order=True),
            [
                {
                    "number": number,
                    "status": CardStatus.ACTIVE,
                    "member_id": member_id,
                    "created_at": now,
                    "activated_at": now,
                }
                for member_id, number in zip(member_ids, card_numbers, strict=True)
            ],
        )
    )
    entry_ids = list(
        session.scalars(
            insert(PointEntry).returning(PointEntry.id, sort_by_parameter_order=True),
            [
                {
                    "member_id": m,
                    "kind": EntryKind.BONUS,
                    "points": points,
                    "pending_points": 0,
                    "reason": "bench: starting points",
                    "actor": ACTOR,
                    "created_at": now,
                }
                for m in member_ids
            ],
        )
    )
    expires_at = lot_expiry(program, now)
    session.execute(
        insert(PointLot),
        [
            {
                "member_id": m,
                "entry_id": e,
                "points": points,
                "remaining": points,
                "unlocked": True,
                "unlocks_at": now,
                "expires_at": expires_at,
                "created_at": now,
            }
            for m, e in zip(member_ids, entry_ids, strict=True)
        ],
    )
    session.execute(
        insert(AuditEntry),
        [
            {
                "actor": ACTOR,
                "action": "member.enrol",
                "subject_type": "member",
                "subject_id": str(m),
                "details": {"card_id": c, "acquisition_source": "bench"},
                "created_at": now,
            }
            for m, c in zip(member_ids, card_ids, strict=True)
        ],
    )
    return card_numbers


def _seed_members_with_services(
    session: Session,
    *,
    program: ProgramSettings,
    store_id: int,
    count: int,
    points: int,
    now: datetime,
) -> list[str]:
    numbers = []
    for i in range(count):
        joined = enrol(
            session,
            Enrolment(name=f"Bench member {i}", acquisition_source="bench"),
            keys=LookupKeys(BENCH_CARD_KEY, "GB"),
            actor=ACTOR,
            now=now,
            store_id=store_id,
        )
        credit(
            session,
            program=program,
            member_id=joined.id,
            points=points,
            kind=EntryKind.BONUS,
            reason="bench: starting points",
            actor=ACTOR,
            now=now,
        )
        numbers.append(joined.cards[0].number)
    return numbers


def seed(
    url: str, *, tills: int, members: int, points: int, card_key: str, with_services: bool
) -> Seed:
    started = time.perf_counter()
    migrate.upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    store_code = f"BENCH-{secrets.token_hex(3).upper()}"
    with session_scope(engine) as session:
        ensure_program(session, now)
        program = get_program(session)
        store = create_store(session, code=store_code, name="Bench store", actor=ACTOR, now=now)
        keys = [
            create_terminal(session, store=store, name=f"Bench till {i + 1}", actor=ACTOR, now=now)[
                1
            ]
            for i in range(tills)
        ]
        how = _seed_members_with_services if with_services else _seed_members_set_based
        numbers = how(
            session, program=program, store_id=store.id, count=members, points=points, now=now
        )
    with session_scope(engine) as session:
        problems = check_ledger(session)
    engine.dispose()
    if problems:
        msg = f"the seeded ledger is inconsistent: {problems[:5]}"
        raise RuntimeError(msg)
    codes = [sign_card(card_key, number) for number in numbers]
    return Seed(store_code, keys, codes, time.perf_counter() - started)


def count_bench_sales(url: str, nonce: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        found = session.scalar(
            select(func.count()).select_from(Sale).where(Sale.external_id.like(f"{nonce}r%"))
        )
    engine.dispose()
    return int(found or 0)


def code_revision() -> str:
    """The commit measured, and whether the code outside bench/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", *args],  # noqa: S607 - git from PATH
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    changed = [
        line for line in git("status", "--porcelain").splitlines() if "bench/" not in line[3:]
    ]
    return f"{commit}" + (f" + {len(changed)} uncommitted changes" if changed else "")


def run_check_ledger(url: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "loyalty.cli", "check-ledger"]
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        command,
        env=os.environ | {"LOYALTY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


# Servers


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread -w{self.workers} --threads {self.threads}"
        return f"{self.worker_class} -w{self.workers}"

    def gunicorn_args(self) -> list[str]:
        args = ["-w", str(self.workers), "-k", self.worker_class]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"gunicorn exited with {process.returncode}; see {log}"
            raise RuntimeError(msg)
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{base_url}/health", timeout=2) as reply,  # noqa: S310
        ):
            if reply.status == 200:
                return
        time.sleep(0.2)
    msg = f"gunicorn did not answer /health within 60 s; see {log}"
    raise RuntimeError(msg)


@contextlib.contextmanager
def gunicorn(
    app: str, config: ServerConfig, *, env: dict[str, str], chdir: Path, log_name: str
) -> Iterator[tuple[str, int]]:
    """Start gunicorn on a free loopback port; yield (base url, master pid); stop it."""
    port = free_port()
    RESULTS_DIR.mkdir(exist_ok=True)
    log = RESULTS_DIR / f"{log_name}.log"
    command = [
        sys.executable, "-m", "gunicorn", *config.gunicorn_args(),
        "-b", f"127.0.0.1:{port}", "--chdir", str(chdir), "--log-level", "warning", app,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process, log)
        yield base_url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# CPU accounting from /proc, so a figure can be told apart from a machine that was busy


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds) of a process, or None when it has gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return command, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    app: dict[int, float] = field(default_factory=dict)
    database: dict[int, float] = field(default_factory=dict)
    redis: dict[int, float] = field(default_factory=dict)
    busy: float = 0.0
    total: float = 0.0


def cpu_snapshot(server_pid: int | None) -> CpuSnapshot:
    snap = CpuSnapshot()
    snap.busy, snap.total = _machine_busy()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None:
            continue
        command, parent, seconds = stat
        if server_pid is not None and (int(entry.name) == server_pid or parent == server_pid):
            snap.app[int(entry.name)] = seconds
        elif command == "postgres":
            snap.database[int(entry.name)] = seconds
        elif command == "redis-server":
            snap.redis[int(entry.name)] = seconds
    return snap


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# wrk


@dataclass
class Run:
    server: str
    scenario: str
    result: dict[str, Any]
    cpu: dict[str, float]

    @property
    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.result.get("counts", {}).items()}

    @property
    def duration(self) -> float:
        return float(self.result["duration_s"])

    @property
    def requests_per_second(self) -> float:
        return self.result["requests"] / self.duration

    @property
    def sales_committed(self) -> int:
        return self.counts.get("sale_201", 0)

    @property
    def non_2xx(self) -> int:
        return self.counts.get("non2xx", 0)

    @property
    def socket_errors(self) -> int:
        errors = self.result.get("errors", {})
        return int(sum(errors.get(k, 0) for k in ("connect", "read", "write", "timeout")))


def run_wrk(
    base_url: str,
    *,
    mode: str,
    tills: int,
    seconds: int,
    data_file: Path | None,
    nonce: str,
    redeem_share: float,
    server_pid: int | None,
) -> tuple[dict[str, Any], dict[str, float]]:
    occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    command = [
        "wrk", f"-t{tills}", f"-c{tills}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(LUA_SCRIPT), base_url,
        "--", mode.removesuffix("+coupons"), str(data_file or "-"), nonce, str(redeem_share),
        occurred_at, BENCH_COUPON if mode.endswith("+coupons") else "",
    ]  # fmt: skip
    before = cpu_snapshot(server_pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = cpu_snapshot(server_pid)
    found = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        msg = f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    wall = after.total - before.total  # CPU-seconds the machine had (all cores)
    wrk_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    cpu = {
        "cores": os.cpu_count() or 1,
        "machine_busy": (after.busy - before.busy) / wall if wall else 0.0,
        "app": _spent(before.app, after.app) / wall if wall else 0.0,
        "database": _spent(before.database, after.database) / wall if wall else 0.0,
        "redis": _spent(before.redis, after.redis) / wall if wall else 0.0,
        "wrk": wrk_cpu / wall if wall else 0.0,
    }
    return json.loads(found.group(1)), cpu


# Reporting


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _other(cpu: dict[str, float]) -> float:
    ours = cpu["app"] + cpu["database"] + cpu.get("redis", 0.0) + cpu["wrk"]
    return max(cpu["machine_busy"] - ours, 0.0)


def print_table(runs: list[Run]) -> None:
    header = (
        f"{'server':<24} {'scenario':<16} {'req/s':>7} {'sales/s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'wrk p99':>7} {'non-2xx':>7}  "
        f"{'busy':>4} {'app':>4} {'db':>4} {'rds':>4} {'wrk':>4} {'other':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        measured = run.result.get("by_kind", {})
        overall = measured.get("all", {})
        sales = (
            f"{run.sales_committed / run.duration:.0f}" if run.scenario.startswith("sales") else "-"
        )
        cpu = run.cpu
        print(
            f"{run.server:<24} {run.scenario:<16} {run.requests_per_second:>7.0f} {sales:>7} "
            f"{_ms(overall.get('p50_ms')):>7} {_ms(overall.get('p95_ms')):>7} "
            f"{_ms(overall.get('p99_ms')):>7} {_ms(run.result['wrk_latency']['p99_ms']):>7} "
            f"{run.non_2xx:>7}  {cpu['machine_busy']:>4.0%} {cpu['app']:>4.0%} "
            f"{cpu['database']:>4.0%} {cpu.get('redis', 0.0):>4.0%} {cpu['wrk']:>4.0%} "
            f"{_other(cpu):>5.0%}"
        )
        if run.scenario.startswith("sales"):
            for kind in ("identify", "sale"):
                by_kind = measured.get(kind)
                if not by_kind:
                    continue
                print(
                    f"{'':<24} {'  ' + kind + ' calls':<16} "
                    f"{by_kind['n'] / run.duration:>7.0f} {'':>7} "
                    f"{_ms(by_kind['p50_ms']):>7} {_ms(by_kind['p95_ms']):>7} "
                    f"{_ms(by_kind['p99_ms']):>7}"
                )
    print(
        "\nreq/s: every request; sales/s: sales committed (201) per second. p50/p95/p99: latency "
        "of every request as\nthe till saw it (the indented rows: each call kind inside the sales "
        "mix); wrk p99: wrk's own figure, which\nadds samples for coordinated omission and so "
        "reads higher. busy: share of all cores in use; app, db, rds,\nwrk: the gunicorn "
        "processes', PostgreSQL's, Redis's and wrk's shares of all cores; other: everything else "
        "on\nthe machine (well above a few % means the figures were taken on a busy machine)."
    )


def print_rules_cost(runs: list[Run]) -> None:
    """Issue 3's figure, and issue 9's: committed sales/s with 20 rules and 4 tiers, and with a
    coupon on every sale, beside the same mix without, as medians over the rounds run."""
    costs = (
        ("sales+rules", "with 20 rules and 4 tiers", "rules", 0.15),
        ("sales+coupons", "with a 10 % coupon on every sale", "a coupon", 0.20),
    )
    for server in dict.fromkeys(run.server for run in runs):
        for scenario, label, what, target in costs:
            rates = {
                name: [
                    run.sales_committed / run.duration
                    for run in runs
                    if run.server == server and run.scenario == name
                ]
                for name in ("sales", scenario)
            }
            if not all(rates.values()):
                continue
            plain, other = (statistics.median(rates[name]) for name in ("sales", scenario))
            print(
                f"\n{server}: committed sales/s without {plain:.0f}, {label} {other:.0f} "
                f"(medians of {len(rates['sales'])} and {len(rates[scenario])} runs): {what} "
                f"cost {1 - other / plain:.0%} of throughput (target < {target:.0%})"
            )


def print_statuses(runs: list[Run]) -> None:
    for run in runs:
        statuses = {k: v for k, v in sorted(run.counts.items()) if re.search(r"_\d{3}$", k)}
        errors = run.socket_errors
        line = ", ".join(f"{k}={v}" for k, v in statuses.items())
        suffix = f"; socket errors={errors}" if errors else ""
        print(f"  {run.server} / {run.scenario}: {line}{suffix}")


# Command line


def _int_list(text_value: str) -> list[int]:
    return [int(v) for v in text_value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--tills", type=int, default=16, help="simulated tills (wrk -t and -c)")
    parser.add_argument("--seconds", type=int, default=15, help="length of each scenario")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds before each")
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma list of {', '.join(SCENARIOS)}; sales+rules runs the sales mix with a "
        "program of 20 active rules and 4 tiers (issue 3's benchmark)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the scenario list this many times, alternating, and compare medians (the "
        "machine's noise of +-20 %% between runs hides a difference of a few %% in one round)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also measure bench/bare_flask.py under the same gunicorn settings",
    )
    parser.add_argument("--members", type=int, default=5000, help="members, each with one card")
    parser.add_argument("--points", type=int, default=10_000, help="starting points per member")
    parser.add_argument(
        "--redeem-share", type=float, default=0.2, help="share of sales that redeem 100-500 points"
    )
    parser.add_argument(
        "--seed-with-services",
        action="store_true",
        help="enrol members one by one through loyalty.members.services.enrol "
        "(slower) instead of set-based INSERTs",
    )
    parser.add_argument(
        "--database-url",
        help="use this database (migrated, then added to; never dropped) instead "
        "of a fresh one (--database-name) on --admin-url",
    )
    parser.add_argument(
        "--admin-url",
        default=ADMIN_URL,
        help="PostgreSQL server on which the fresh bench database is created",
    )
    parser.add_argument(
        "--database-name",
        default=BENCH_DATABASE,
        help="name of the fresh database, created on --admin-url and dropped at the end",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the fresh database at the end"
    )
    parser.add_argument(
        "--url",
        help="an already running server (needs --database-url of its database "
        "and --card-key of its LOYALTY_CARD_KEY); no gunicorn is started",
    )
    parser.add_argument(
        "--card-key",
        default=None,
        help="with --url: the server's card key (default: LOYALTY_CARD_KEY, else its default)",
    )
    parser.add_argument(
        "--worker-class",
        default="sync",
        help="gunicorn worker classes to try, comma list (sync, gthread); the default, sync with "
        "as many workers as cores, did best on a 2-core machine (bench/README.md)",
    )
    parser.add_argument("--workers", default="2", help="gunicorn worker counts, comma list")
    parser.add_argument("--threads", default="4", help="threads per gthread worker, comma list")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="LOYALTY_REDIS_URL for the server (rate limits in Redis, as in "
        "production); default: in-memory limits",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the figures here (default bench/results/till-<time>.json)",
    )
    args = parser.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.url and not args.database_url:
        parser.error("--url needs --database-url: the database that server uses")
    return args


def server_configs(args: argparse.Namespace) -> list[ServerConfig]:
    configs = []
    for worker_class in [c for c in args.worker_class.split(",") if c]:
        for workers in _int_list(args.workers):
            threads = _int_list(args.threads) if worker_class == "gthread" else [1]
            configs += [ServerConfig(worker_class, workers, t) for t in threads]
    return configs


@dataclass
class Bench:
    args: argparse.Namespace
    url: str
    data_file: Path
    nonce: str
    runs: list[Run] = field(default_factory=list)
    sales_committed: int = 0  # every 201 for a sale, warm-ups included
    revision: str = ""
    invocations: int = 0  # wrk runs: external_ids are <nonce>r<invocation>-<till>-<counter>

    def _wrk(
        self, base_url: str, mode: str, seconds: int, server_pid: int | None
    ) -> tuple[dict[str, Any], dict[str, float]]:
        self.invocations += 1
        return run_wrk(
            base_url,
            mode=mode,
            seconds=seconds,
            tills=self.args.tills,
            data_file=self.data_file,
            nonce=f"{self.nonce}r{self.invocations}",
            redeem_share=self.args.redeem_share,
            server_pid=server_pid,
        )

    def measure(
        self, base_url: str, server: str, scenario: str, mode: str, server_pid: int | None
    ) -> None:
        if self.args.warmup > 0:
            warm, _cpu = self._wrk(base_url, mode, self.args.warmup, server_pid)
            self.sales_committed += int(warm.get("counts", {}).get("sale_201", 0))
        result, cpu = self._wrk(base_url, mode, self.args.seconds, server_pid)
        run = Run(server, scenario, result, cpu)
        self.sales_committed += run.sales_committed
        self.runs.append(run)
        print(
            f"  {scenario:<9} {run.requests_per_second:8.0f} req/s  "
            f"p99 {_ms(result['by_kind']['all']['p99_ms'])} ms  non-2xx {run.non_2xx}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    nonce = f"b{secrets.token_hex(4)}"
    fresh = args.database_url is None
    url = args.database_url or fresh_database(args.admin_url, args.database_name)
    card_key = BENCH_CARD_KEY
    if args.url:
        from loyalty.settings import load_settings  # noqa: PLC0415

        card_key = args.card_key or load_settings().card_key
    try:
        print(f"database: {make_url(url).render_as_string(hide_password=True)}")
        seeded = seed(
            url,
            tills=args.tills,
            members=args.members,
            points=args.points,
            card_key=card_key,
            with_services=args.seed_with_services,
        )
        print(
            f"seeded store {seeded.store_code}: {args.tills} terminals, {args.members} members "
            f"with {args.points} points each ({seeded.seconds:.1f} s)"
        )
        RESULTS_DIR.mkdir(exist_ok=True)
        data_file = RESULTS_DIR / f"till-data-{nonce}.txt"
        data_file.write_text(
            "".join(f"key {k}\n" for k in seeded.keys)
            + "".join(f"code {c}\n" for c in seeded.codes)
        )
        bench = Bench(args, url, data_file, nonce, revision=code_revision())
        try:
            run_all(bench, card_key)
        finally:
            data_file.unlink(missing_ok=True)
        report(bench)
        status, output = run_check_ledger(url)
        print(f"\n$ LOYALTY_DATABASE_URL=... loyalty check-ledger\n{output}\n(exit {status})")
        recorded = count_bench_sales(url, nonce)
        # A sale in flight when wrk stops is committed but never counted: at most one per till
        # and wrk run.
        in_flight = recorded - bench.sales_committed
        agree = 0 <= in_flight <= args.tills * bench.invocations
        print(
            f"sales in the database from this run: {recorded}; 201s counted by wrk: "
            f"{bench.sales_committed} (+{in_flight} in flight when wrk stopped"
            f"{'' if agree else ': MORE THAN THE TILLS COULD HAVE HAD IN FLIGHT'})"
        )
        write_json(bench, status, recorded)
        return 0 if status == 0 and agree else 1
    finally:
        if fresh and not args.keep_database:
            drop_database(args.admin_url, args.database_name)


def run_all(bench: Bench, card_key: str) -> None:
    args = bench.args
    if args.url:
        print(f"server: {args.url} (already running)")
        for scenario in args.scenarios:
            bench.measure(args.url.rstrip("/"), "external", scenario, scenario, None)
        return
    env = {
        "LOYALTY_DATABASE_URL": bench.url,
        "LOYALTY_CARD_KEY": card_key,
        "LOYALTY_SECRET_KEY": secrets.token_hex(16),
    }
    if args.redis_url:
        env["LOYALTY_REDIS_URL"] = args.redis_url
    for config in server_configs(args):
        if args.baseline:
            print(f"server: bench/bare_flask.py, gunicorn {config.label}", flush=True)
            with gunicorn(
                "bare_flask:app", config, env={}, chdir=BENCH_DIR, log_name="bare-gunicorn"
            ) as (base_url, pid):
                bench.measure(base_url, config.label, "bare flask", "bare", pid)
        print(f"server: server.wsgi:app, gunicorn {config.label}", flush=True)
        with gunicorn(
            "server.wsgi:app", config, env=env, chdir=PROJECT_ROOT, log_name="till-gunicorn"
        ) as (base_url, pid):
            for scenario in args.scenarios * args.rounds:
                if scenario == "sales+rules":
                    with rule_program(bench.url):
                        bench.measure(base_url, config.label, scenario, "sales", pid)
                elif scenario == "sales+coupons":
                    with coupon_program(bench.url):
                        bench.measure(base_url, config.label, scenario, "sales+coupons", pid)
                else:
                    bench.measure(base_url, config.label, scenario, scenario, pid)


RULE_PROGRAM: list[dict[str, Any]] = [
    {"kind": "exclusion", "params": {"categories": ["household"]}},
    {
        "kind": "spend",
        "params": {"points": 1, "per_minor": 100, "rounding": "nearest"},
        "priority": 10,
    },
    {"kind": "product", "params": {"skus": ["MILK-1L"], "mode": "add", "points_per_unit": 5}},
    {"kind": "product", "params": {"skus": ["COFFEE-500"], "mode": "add", "points_per_unit": 10}},
    {"kind": "product", "params": {"skus": ["WINE-RED"], "mode": "add", "points_per_unit": 20}},
    {"kind": "product", "params": {"skus": ["NAPPIES-M"], "mode": "add", "points_per_unit": 15}},
    {
        "kind": "product",
        "params": {"categories": ["dairy"], "mode": "multiply", "multiplier_percent": 200},
    },
    {
        "kind": "product",
        "params": {"categories": ["baby"], "mode": "multiply", "multiplier_percent": 150},
    },
    {"kind": "visit", "params": {"points": 10, "min_basket": 2000}},
    {
        "kind": "promotion",
        "params": {
            "mode": "multiply",
            "multiplier_percent": 150,
            "from_time": "00:00",
            "until_time": "23:59",
        },
    },
    {"kind": "promotion", "params": {"weekdays": [5, 6], "mode": "add", "points": 5}},
    {"kind": "birthday", "params": {"points": 100, "window": "month"}},
    {"kind": "first_purchase", "params": {"points": 50}},
    {"kind": "tier_multiplier", "params": {}},
    {"kind": "visit", "params": {"points": 10}, "cap_points": 30, "cap_period": "day"},
    {
        "kind": "product",
        "params": {"skus": ["TEA-80"], "mode": "add", "points_per_unit": 3},
        "cap_points": 100,
        "cap_period": "month",
    },
    {
        "kind": "promotion",
        "params": {"mode": "add", "points": 7, "from_time": "17:00", "until_time": "19:00"},
    },
    {
        "kind": "product",
        "params": {"skus": ["PASTA-500"], "mode": "add", "points_per_unit": 2},
        "tiers": ["GOLD", "PLATINUM"],
    },
    {"kind": "visit", "params": {"points": 3}, "stackable": False, "priority": 900},
    {"kind": "signup", "params": {"points": 25}},
]
TIER_PROGRAM = [
    ("BRONZE", 1, 5_000, 100),
    ("SILVER", 2, 20_000, 110),
    ("GOLD", 3, 50_000, 125),
    ("PLATINUM", 4, 100_000, 150),
]


@contextlib.contextmanager
def rule_program(url: str) -> Iterator[None]:
    """Install 20 active rules and 4 tiers through the services (sales read them live), and
    take them away again so other scenarios and server settings are measured without them."""
    from loyalty.rules.models import EarnAward, EarnRule  # noqa: PLC0415
    from loyalty.rules.services import archive_rule, create_rule  # noqa: PLC0415
    from loyalty.tiers.models import MemberTier, Tier  # noqa: PLC0415
    from loyalty.tiers.services import create_tier  # noqa: PLC0415

    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for code, rank, threshold, percent in TIER_PROGRAM:
            create_tier(
                session,
                code=code,
                name=code.title(),
                rank=rank,
                threshold=threshold,
                earn_multiplier_percent=percent,
                actor=ACTOR,
                now=now,
            )
        ids = [
            create_rule(session, {"name": f"bench rule {n}", **rule}, actor=ACTOR, now=now).id
            for n, rule in enumerate(RULE_PROGRAM, start=1)
        ]
    print(f"  installed {len(ids)} rules and {len(TIER_PROGRAM)} tiers", flush=True)
    try:
        yield
    finally:
        time.sleep(1)  # sales in flight when wrk stopped still commit; let them
        with session_scope(engine) as session:
            # and keep any straggler from giving a member a tier while the tiers go
            session.execute(text("LOCK TABLE member_tiers IN EXCLUSIVE MODE"))
            for rule_id in ids:
                archive_rule(session, rule_id, actor=ACTOR, now=datetime.now(UTC))
            awarded = session.scalar(
                select(func.count()).select_from(EarnAward).where(EarnAward.rule_id.in_(ids))
            )
            session.execute(MemberTier.__table__.delete())
            session.execute(Tier.__table__.delete())
            rules_live = session.scalar(
                select(func.count()).select_from(EarnRule).where(EarnRule.archived_at.is_(None))
            )
        engine.dispose()
        print(f"  rule awards recorded: {awarded}; rules left live: {rules_live}", flush=True)


@contextlib.contextmanager
def coupon_program(url: str) -> Iterator[None]:
    """A 10 % offer with the shared code BENCH10 and no limits, for the sales+coupons scenario
    (every sale carries it); archived again afterwards."""
    from loyalty.coupons.offers import archive_offer, create_offer  # noqa: PLC0415
    from loyalty.coupons.services import create_shared_coupon, find_coupon  # noqa: PLC0415

    engine = make_engine(url)
    with session_scope(engine) as session:
        found = find_coupon(session, BENCH_COUPON)
        if found is not None:
            archive_offer(session, found[1].id, actor=ACTOR, now=datetime.now(UTC))
            session.execute(
                text("UPDATE coupons SET key = key || '-' || id WHERE key = :k"),
                {"k": BENCH_COUPON},
            )
        offer = create_offer(
            session,
            {"name": "bench 10 %", "kind": "percent_off", "value": 10},
            actor=ACTOR,
            now=datetime.now(UTC),
        )
        create_shared_coupon(session, offer.id, BENCH_COUPON, actor=ACTOR, now=datetime.now(UTC))
    print("  installed a 10 % offer, code BENCH10 on every sale", flush=True)
    try:
        yield
    finally:
        time.sleep(1)
        with session_scope(engine) as session:
            archive_offer(session, offer.id, actor=ACTOR, now=datetime.now(UTC))
        engine.dispose()


def report(bench: Bench) -> None:
    args = bench.args
    print(f"\ncode: {bench.revision}")
    print(
        f"{args.tills} tills, {args.seconds:g} s per scenario "
        f"(after {args.warmup:g} s warm-up), {args.members} members, "
        f"{args.redeem_share:.0%} of sales redeem points, "
        f"rate limits in {'Redis' if args.redis_url else 'memory'}, "
        f"{os.cpu_count()} cores\n"
    )
    print_table(bench.runs)
    print_rules_cost(bench.runs)
    print("\nresponses by call and status:")
    print_statuses(bench.runs)


def write_json(bench: Bench, ledger_status: int, recorded: int) -> None:
    path = bench.args.json or RESULTS_DIR / f"till-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(bench.args).items()}
    body = {
        "code": bench.revision,
        "arguments": arguments,
        "runs": [
            {"server": r.server, "scenario": r.scenario, "wrk": r.result, "cpu": r.cpu}
            for r in bench.runs
        ],
        "check_ledger_exit": ledger_status,
        "sales_in_database": recorded,
        "sales_counted": bench.sales_committed,
    }
    path.write_text(json.dumps(body, indent=2))
    print(f"figures written to {path}")


if __name__ == "__main__":
    sys.exit(main())
