"""Background jobs: what runs them, and when.

The jobs: `unlock-points`, `expire-points`, `remind-expiring`, `send-outbox`, and the daily
`review-tiers` (JOBS), each run on its own unit of work on the configured database and described
in one line.

- Without Redis (the embedded default) jobs run in the process that asks for them: `loyalty
  run-jobs` runs the frequent four once, and is what cron calls every few minutes (each is cheap
  when there is nothing to do, and does nothing twice); `loyalty run-jobs --daily` runs the daily
  ones, from a daily cron line.
- With LOYALTY_REDIS_URL, `submit` enqueues a job on the RQ queue `loyalty` instead, and `loyalty
  worker` runs an RQ worker that executes them; `loyalty worker --schedule` also enqueues every
  job at its interval (SCHEDULE) through RQ's cron scheduler. Run one scheduling worker, and as
  many plain workers as needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from redis import Redis, RedisError
from rq import Queue, Worker
from rq.cron import CronScheduler
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.clock import SystemClock
from loyalty.coupons import services as coupon_jobs
from loyalty.coupons.rewards import refund_expired_rewards
from loyalty.db import make_engine, session_scope
from loyalty.jobs.models import JobRun
from loyalty.ledger import jobs as ledger_jobs
from loyalty.messaging.sending import backend_from_settings, send_outbox
from loyalty.program import get_program
from loyalty.settings import Settings, load_settings
from loyalty.tiers.services import review_tiers

log = logging.getLogger(__name__)

QUEUE_NAME = "loyalty"
JOB_TIMEOUT_SECONDS = 3_600
SEND_LIMIT = 500  # messages per run of send-outbox; the next run sends the next ones
DAY_SECONDS = 86_400
DAILY_AT = "30 3 * * *"  # cron: the daily jobs run at 03:30, the server's time

Progress = Callable[[int], None]


def counted(number: int, noun: str) -> str:
    """'1 member', '1,234 members'."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _unlock(session: Session, now: datetime, _settings: Settings, progress: Progress | None) -> str:
    done = ledger_jobs.unlock_points(session, now, checkpoint=session.commit, on_batch=progress)
    return f"unlocked {done.points:,} pending points for {counted(done.members, 'member')}"


def _expire(session: Session, now: datetime, _settings: Settings, progress: Progress | None) -> str:
    done = ledger_jobs.expire_points(session, now, checkpoint=session.commit, on_batch=progress)
    text = f"expired {-done.points:,} points from {counted(done.members, 'member')}"
    if done.pending_points:
        text += f" (and {-done.pending_points:,} pending points)"
    return f"{text}, {counted(done.lots, 'lot')}"


def _remind(
    session: Session, now: datetime, _settings: Settings, _progress: Progress | None
) -> str:
    queued = ledger_jobs.queue_expiry_reminders(session, now, checkpoint=session.commit)
    return f"queued {counted(queued, 'reminder')} of expiring points"


def _review(
    session: Session, now: datetime, _settings: Settings, _progress: Progress | None
) -> str:
    report = review_tiers(session, get_program(session), now)
    return (
        f"{counted(report.upgraded, 'upgrade')}, {report.grace_started:,} grace periods "
        f"started, {counted(report.downgraded, 'downgrade')}, "
        f"{report.floors_ended:,} floors ended"
    )


def _generate(
    session: Session, _now: datetime, _settings: Settings, progress: Progress | None
) -> str:
    made = coupon_jobs.generate_pending(
        session, SystemClock().now, checkpoint=session.commit, progress=progress
    )
    return f"generated {counted(made, 'coupon code')}"


def _assign(
    session: Session, _now: datetime, _settings: Settings, progress: Progress | None
) -> str:
    given = coupon_jobs.assign_pending(
        session, SystemClock().now, checkpoint=session.commit, progress=progress
    )
    return f"gave {counted(given, 'coupon')} to the members of marketers' lists"


def _refund(
    session: Session, now: datetime, _settings: Settings, _progress: Progress | None
) -> str:
    refunded = refund_expired_rewards(session, now)
    return f"gave back the points of {counted(refunded, 'reward')} that expired unused"


def _send(session: Session, now: datetime, settings: Settings, progress: Progress | None) -> str:
    backend = backend_from_settings(settings)
    report = send_outbox(session, backend, now, SEND_LIMIT, checkpoint=session.commit)
    if progress is not None:
        progress(report.sent + report.failed)
    return report.describe()


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[Session, datetime, Settings, Progress | None], str]
    # how many members (or messages) a run will go through, for a progress bar
    count: Callable[[Session, datetime], int] | None
    every_seconds: int

    @property
    def daily(self) -> bool:
        return self.every_seconds >= DAY_SECONDS


JOBS: dict[str, JobKind] = {
    job.name: job
    for job in (
        JobKind("unlock-points", _unlock, ledger_jobs.members_with_matured_points, 300),
        JobKind("expire-points", _expire, ledger_jobs.members_with_expired_points, 900),
        JobKind("remind-expiring", _remind, None, 3_600),
        JobKind("send-outbox", _send, None, 60),
        JobKind("generate-codes", _generate, coupon_jobs.codes_to_generate, 60),
        JobKind("assign-coupons", _assign, coupon_jobs.members_to_assign, 60),
        JobKind("refund-expired-rewards", _refund, None, 3_600),
        JobKind("review-tiers", _review, None, DAY_SECONDS),
    )
}
"""In the order `run-jobs` runs them: points that mature before they expire unlock first."""


def jobs_to_run(*, daily: bool) -> list[str]:
    """What `run-jobs` runs: the frequent jobs, or with --daily the daily ones."""
    return [job.name for job in JOBS.values() if job.daily == daily]


def run_job(
    name: str,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> str:
    """Run one job here and now, on its own engine and unit of work (each batch is committed
    as it is done), and keep a record of the run (`job_runs`). What an RQ worker executes;
    returns the job's one-line description."""
    job = JOBS[name]
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    started_at = SystemClock().now()
    started = time.monotonic()
    run = JobRun(name=name, started_at=started_at, succeeded=False, summary="did not finish")
    try:
        with session_scope(engine) as session:
            run.summary = job.run(session, now or started_at, settings, progress)
        run.succeeded = True
    except Exception as exc:
        run.summary = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.seconds = time.monotonic() - started
        _keep_run(engine, run)
        engine.dispose()
    return run.summary


RUNS_KEPT = 1_000  # per job: the last ~16 hours of a job run every minute, months of a daily one


def _keep_run(engine: Engine, run: JobRun) -> None:
    """Record the run, and forget the oldest runs of the job past RUNS_KEPT (so the table,
    and what /metrics reads of it, stays small)."""
    run.summary = run.summary[:500]
    try:
        with session_scope(engine) as session:
            session.add(run)
            session.flush()
            oldest_kept = session.scalar(
                select(JobRun.id)
                .where(JobRun.name == run.name)
                .order_by(JobRun.id.desc())
                .offset(RUNS_KEPT - 1)
                .limit(1)
            )
            if oldest_kept is not None:
                session.execute(
                    delete(JobRun).where(JobRun.name == run.name, JobRun.id < oldest_kept)
                )
    except DBAPIError:  # the database that failed the job may refuse this too
        log.warning("job run not recorded", extra={"job": run.name})


def redis_connection(settings: Settings, *, timeout: float | None = None) -> Redis[bytes]:
    if not settings.redis_url:
        msg = "LOYALTY_REDIS_URL is not set"
        raise RuntimeError(msg)
    return Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )


@dataclass(frozen=True)
class Submitted:
    """A job either queued on RQ (`job_id`) or run here already (`result`)."""

    name: str
    job_id: str | None = None
    result: str | None = None

    def describe(self) -> str:
        if self.job_id is not None:
            return f"{self.name}: queued as RQ job {self.job_id}"
        return f"{self.name}: {self.result}"


def submit(
    name: str,
    *,
    settings: Settings | None = None,
    queue_name: str = QUEUE_NAME,
    background: bool = False,
) -> Submitted:
    """Have a job done: enqueued on RQ when Redis is configured and answers, else run here at
    once (a job is never lost to a Redis outage); with `background`, here in a thread of its
    own, so that a request does not wait for a long job."""
    if name not in JOBS:
        msg = f"no job named {name!r}; the jobs are {', '.join(JOBS)}"
        raise ValueError(msg)
    settings = settings or load_settings()
    if settings.redis_url:
        connection = redis_connection(settings, timeout=max(settings.redis_timeout, 1.0))
        try:
            job = Queue(queue_name, connection=connection).enqueue(
                run_job, name, job_timeout=JOB_TIMEOUT_SECONDS, description=f"loyalty {name}"
            )
        except RedisError as exc:
            log.warning(
                "Redis does not answer (%s): running the job here instead", type(exc).__name__
            )
        else:
            return Submitted(name, job_id=job.id)
    if background:
        threading.Thread(
            target=_run_logged, args=(name, settings), name=f"job {name}", daemon=True
        ).start()
        return Submitted(name, result="running in this process")
    return Submitted(name, result=run_job(name, settings=settings))


def _run_logged(name: str, settings: Settings) -> None:
    try:
        run_job(name, settings=settings)
    except Exception:
        log.exception("the job %s failed", name)


class _ThreadedCron(CronScheduler):
    """RQ's cron scheduler, run beside a worker in a thread: signals are the worker's."""

    def _install_signal_handlers(self) -> None:
        pass


def scheduler(connection: Redis[bytes], queue_name: str = QUEUE_NAME) -> CronScheduler:
    """A cron scheduler that enqueues every job at its interval."""
    cron = _ThreadedCron(connection=connection, name=f"loyalty-{queue_name}")
    for job in JOBS.values():
        # An interval job runs as soon as the scheduler starts; a daily one belongs at night,
        # not at whatever hour the worker was last restarted.
        when = {"cron": DAILY_AT} if job.daily else {"interval": job.every_seconds}
        cron.register(
            run_job,
            queue_name,
            args=(job.name,),
            job_timeout=JOB_TIMEOUT_SECONDS,
            name=f"loyalty {job.name}",
            **when,
        )
    return cron


def work(
    settings: Settings,
    *,
    burst: bool = False,
    schedule: bool = False,
    queue_name: str = QUEUE_NAME,
    logging_level: str = "INFO",
) -> bool:
    """Run an RQ worker on the jobs queue (until stopped, or until the queue is empty with
    `burst`); with `schedule`, also enqueue every job at its interval."""
    connection = redis_connection(settings)
    if schedule:
        cron = scheduler(connection, queue_name)
        threading.Thread(target=cron.start, name="loyalty-cron", daemon=True).start()
    worker = Worker([Queue(queue_name, connection=connection)], connection=connection)
    return bool(worker.work(burst=burst, logging_level=logging_level, with_scheduler=False))
