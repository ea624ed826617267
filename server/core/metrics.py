"""/metrics in the Prometheus text format, for operators (not public: a staff key with the
`metrics` scope, or LOYALTY_PUBLIC_METRICS=true behind a private network).

- HTTP requests by endpoint, method and status, with latency histograms;
- sales committed, returns, points earned and redeemed: counted once their request committed;
- the outbox's backlog and failures, and each job's last run, duration and outcome: read from
  the database at each scrape (cheap, indexed queries), so that jobs run by cron or by an RQ
  worker are seen whichever process ran them.

Under gunicorn set PROMETHEUS_MULTIPROC_DIR to an empty directory before it starts: every
worker writes its counters there and a scrape adds them up (prometheus-client's multiprocess
mode; README, "Production").
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.jobs.models import JobRun
from loyalty.messaging.models import OutboxMessage
from loyalty.messaging.sending import MAX_ATTEMPTS
from server.core import context
from server.core.extensions import db

REQUESTS = Histogram(
    "loyalty_http_request_duration_seconds",
    "HTTP requests by endpoint, method and status, and how long they took",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SALES = Counter("loyalty_sales_committed_total", "Sales committed (replays not counted)")
RETURNS = Counter("loyalty_returns_committed_total", "Returns and voids committed")
POINTS_EARNED = Counter("loyalty_points_earned_total", "Points earned by committed sales")
POINTS_REDEEMED = Counter("loyalty_points_redeemed_total", "Points redeemed by committed sales")


def count_sale(earned: int, redeemed: int) -> None:
    SALES.inc()
    POINTS_EARNED.inc(earned)
    POINTS_REDEEMED.inc(redeemed)


class DatabaseCollector(Collector):
    """Figures read from the database at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        session = db.session()
        now = context.now()
        outbox = OutboxMessage
        backlog = GaugeMetricFamily(
            "loyalty_outbox_backlog", "Messages due and not sent yet, by kind", labels=["kind"]
        )
        failed = GaugeMetricFamily(
            "loyalty_outbox_failing",
            "Unsent messages whose last attempt failed, by kind (given up: attempts exhausted)",
            labels=["kind", "given_up"],
        )
        for kind, count in session.execute(
            select(outbox.channel, func.count())
            .where(outbox.sent_at.is_(None), outbox.available_at <= now)
            .group_by(outbox.channel)
        ):
            backlog.add_metric([kind], count)
        failing = (
            select(outbox.channel, (outbox.attempts >= MAX_ATTEMPTS).label("given_up"))
            .where(outbox.sent_at.is_(None), outbox.last_error.is_not(None))
            .subquery()
        )
        for kind, given_up, count in session.execute(
            select(failing.c.channel, failing.c.given_up, func.count()).group_by(
                failing.c.channel, failing.c.given_up
            )
        ):
            failed.add_metric([kind, "true" if given_up else "false"], count)
        yield backlog
        yield failed
        yield from _job_figures(session)


def _job_figures(session: Session) -> Iterator[GaugeMetricFamily]:
    last_run = GaugeMetricFamily(
        "loyalty_job_last_run_timestamp_seconds", "When each job last started", labels=["job"]
    )
    duration = GaugeMetricFamily(
        "loyalty_job_last_duration_seconds", "How long each job's last run took", labels=["job"]
    )
    succeeded = GaugeMetricFamily(
        "loyalty_job_last_succeeded", "1 when each job's last run succeeded", labels=["job"]
    )
    runs = GaugeMetricFamily(
        "loyalty_job_runs", "Runs recorded, by job and outcome", labels=["job", "outcome"]
    )
    latest = select(JobRun.name, func.max(JobRun.id).label("id")).group_by(JobRun.name).subquery()
    for run in session.scalars(select(JobRun).join(latest, latest.c.id == JobRun.id)):
        last_run.add_metric([run.name], run.started_at.timestamp())
        duration.add_metric([run.name], run.seconds)
        succeeded.add_metric([run.name], 1 if run.succeeded else 0)
    for name, ok, count in session.execute(
        select(JobRun.name, JobRun.succeeded, func.count()).group_by(JobRun.name, JobRun.succeeded)
    ):
        runs.add_metric([name, "succeeded" if ok else "failed"], count)
    yield from (last_run, duration, succeeded, runs)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - copy the process's
            registry.register(collector)
    registry.register(DatabaseCollector())
    return registry


def metrics_response() -> Response:
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


_observers: dict[tuple[str | None, str, int], Histogram] = {}


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """Count a request with its duration (the labelled child is looked up once per kind)."""
    if endpoint == "operations.metrics":
        return
    key = (endpoint, method, status)
    child = _observers.get(key)
    if child is None:
        child = _observers[key] = REQUESTS.labels(endpoint or "(none)", method, str(status))
    child.observe(seconds)
