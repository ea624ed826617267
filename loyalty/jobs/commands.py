"""`loyalty` commands of the background jobs; loyalty/cli.py registers every one in COMMANDS.

The frequent jobs of loyalty/jobs/services.py, one command each (the daily tier review is
`loyalty tiers review`), plus `run-jobs` (what cron calls; `--daily` for the daily jobs) and
`worker` (an RQ worker, when Redis is configured). Each prints what it did in one line; long
runs show a progress bar on stderr.
"""

from __future__ import annotations

import sys

import click

from loyalty.commandline import clock, unit_of_work
from loyalty.jobs import services as jobs
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


def _job_command(name: str, label: str, short: str, description: str) -> click.Command:
    @click.command(name, short_help=short, help=description)
    def command() -> None:
        _run_with_progress(name, label)

    return command


JOB_COMMANDS = [
    _job_command(
        "expire-points",
        "expiring points",
        "Expire the points whose last day is over.",
        "Expire the points whose expiry has come (one entry per member). Safe to run again.",
    ),
    _job_command(
        "unlock-points",
        "unlocking points",
        "Make pending points that have waited spendable.",
        "Make pending points whose waiting period is over spendable. Safe to run again.",
    ),
    _job_command(
        "remind-expiring",
        "reminding",
        "Queue reminders of points about to expire.",
        "Queue an email to each consenting member whose points expire within the program's "
        "reminder_days. Nobody is reminded twice of the same expiry.",
    ),
    _job_command(
        "send-outbox",
        "sending",
        "Send the queued messages that are due.",
        "Send the messages that are due (by SMTP with LOYALTY_SMTP_URL, else recorded to "
        "LOYALTY_OUTBOX_FILE). Failures are kept and tried again later.",
    ),
]


@click.command("run-jobs", short_help="Run the frequent jobs, or with --daily the daily ones.")
@click.option("--daily", is_flag=True, help="run the daily jobs (the tier review) instead")
def run_jobs_command(*, daily: bool) -> None:
    """Run the frequent jobs once, here: unlock, expire, remind, send (cron, every few
    minutes). With --daily: the daily ones, the tier review (cron, once a day)."""
    now = clock.now()
    settings = load_settings()
    for name in jobs.jobs_to_run(daily=daily):
        click.echo(f"{name}: {jobs.run_job(name, now, settings=settings)}")


@click.command("worker", short_help="Run an RQ worker for the jobs (needs Redis).")
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
    *JOB_COMMANDS,
    run_jobs_command,
    worker_command,
]
