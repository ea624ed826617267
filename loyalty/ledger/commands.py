"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS.

The jobs of loyalty/jobs.py, one command each, plus `run-jobs` (all of them, what cron calls)
and `worker` (an RQ worker, when Redis is configured). Each prints what it did in one line;
long runs show a progress bar on stderr.
"""

from __future__ import annotations

import sys

import click

from loyalty import jobs
from loyalty.commandline import clock, unit_of_work
from loyalty.settings import load_settings


def _run_with_progress(name: str, label: str) -> None:
    job = jobs.JOBS[name]
    settings = load_settings()
    now = clock.now()
    with unit_of_work() as session:
        total = job.count(session, now) if job.count is not None else 0
    if not total:
        click.echo(jobs.run_job(name, now, settings=settings))
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        summary = jobs.run_job(name, now, settings=settings, progress=bar.update)
    click.echo(summary)


@click.command("expire-points")
def expire_points_command() -> None:
    """Expire the points whose expiry has come (one entry per member). Safe to run again."""
    _run_with_progress("expire-points", "expiring points")


@click.command("unlock-points")
def unlock_points_command() -> None:
    """Make pending points whose waiting period is over spendable. Safe to run again."""
    _run_with_progress("unlock-points", "unlocking points")


@click.command("remind-expiring")
def remind_expiring_command() -> None:
    """Queue an email to each consenting member whose points expire within the program's
    reminder_days. Nobody is reminded twice of the same expiry."""
    click.echo(jobs.run_job("remind-expiring", clock.now()))


@click.command("send-outbox")
def send_outbox_command() -> None:
    """Send the messages that are due (by SMTP with LOYALTY_SMTP_URL, else recorded to
    LOYALTY_OUTBOX_FILE). Failures are kept and tried again later."""
    click.echo(jobs.run_job("send-outbox", clock.now()))


@click.command("run-jobs")
def run_jobs_command() -> None:
    """Run every job once, here: unlock, expire, remind, send. What cron calls."""
    now = clock.now()
    settings = load_settings()
    for name in jobs.JOBS:
        click.echo(f"{name}: {jobs.run_job(name, now, settings=settings)}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop once the queue is empty")
@click.option(
    "--schedule", is_flag=True, help="also enqueue every job at its interval (run one such worker)"
)
@click.option("--queue", default=jobs.QUEUE_NAME, show_default=True, help="the RQ queue")
def worker_command(*, burst: bool, schedule: bool, queue: str) -> None:
    """Run an RQ worker for the background jobs (needs LOYALTY_REDIS_URL)."""
    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException(
            "LOYALTY_REDIS_URL is not set: without Redis, have cron call `loyalty run-jobs`"
        )
    click.echo(f"worker on queue {queue!r}" + (", scheduling the jobs" if schedule else ""))
    jobs.work(settings, burst=burst, schedule=schedule, queue_name=queue)


COMMANDS: list[click.Command] = [
    expire_points_command,
    unlock_points_command,
    remind_expiring_command,
    send_outbox_command,
    run_jobs_command,
    worker_command,
]
