"""`loyalty referrals …`: the referral terms (shown and changed, audited), the referrals, the
programme's funnel, and remembering the contacts of members who enrolled before referrals
existed. The same services and field messages as the API; loyalty/cli.py registers COMMANDS."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import date
from typing import Any

import click

from loyalty.commandline import actor, clock, refusal, table, unit_of_work
from loyalty.errors import DomainError
from loyalty.referrals import services
from loyalty.referrals.models import ReferralStatus
from loyalty.settings import load_settings

CLEAR = "none"  # what an option of a setting that may be empty takes to empty it
_NULLABLE = ("referrer_offer_id", "referee_offer_id", "monthly_cap")
_OFFER_HELP = "a coupon of this offer instead of points (none: points again)"


def _whole_or_none(name: str, value: str) -> int | None:
    """A nullable setting as typed: a whole number, or `none` to empty it."""
    if value.strip().lower() == CLEAR:
        return None
    try:
        return int(value)
    except ValueError:
        option = "--" + name.removesuffix("_id").replace("_", "-")
        raise click.BadParameter(
            f"{value!r} is neither a whole number nor {CLEAR}", param_hint=option
        ) from None


@click.group("referrals", short_help="Referral terms, referrals and the funnel.")
def referrals_group() -> None:
    """Friend brings friend: the terms, the referrals and what became of them."""


def _show(terms: services.ReferralTerms) -> str:
    rows = [(name, "-" if value is None else str(value)) for name, value in asdict(terms).items()]
    return table(("setting", "value"), rows)


@referrals_group.command("settings", short_help="Show the referral terms.")
def show_settings() -> None:
    """The referral terms in force (the defaults until changed)."""
    with unit_of_work() as session:
        click.echo(_show(services.referral_settings(session)))


@referrals_group.command("set", short_help="Change the referral terms (audited).")
@click.option("--enabled/--disabled", default=None, help="take new referrals or not")
@click.option("--min-purchase", type=int, help="minor units the friend's purchase must reach")
@click.option("--qualify-within-days", type=int, help="days after enrolling to qualify")
@click.option("--referrer-points", type=int, help="points for the member who referred")
@click.option("--referee-points", type=int, help="points for the friend")
@click.option("--referrer-offer", "referrer_offer_id", metavar="ID|none", help=_OFFER_HELP)
@click.option("--referee-offer", "referee_offer_id", metavar="ID|none", help=_OFFER_HELP)
@click.option(
    "--monthly-cap", metavar="N|none", help="referrals per referrer a month (none: no cap)"
)
@click.option("--reversal-window-days", type=int, help="days a full return takes rewards back")
def set_settings(**options: Any) -> None:
    """Change the terms named; referrals already recorded keep their window, rewards given
    stay given."""
    changes = {
        name: _whole_or_none(name, value) if name in _NULLABLE else value
        for name, value in options.items()
        if value is not None
    }
    with unit_of_work() as session:
        try:
            terms = services.update_settings(session, changes, actor=actor(), now=clock.now())
        except DomainError as exc:
            click.echo(refusal("the referral settings", exc), err=True)
            sys.exit(1)
    click.echo(_show(terms))


@referrals_group.command("list", short_help="List referrals, newest first.")
@click.option("--status", type=click.Choice([s.value for s in ReferralStatus]))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_referrals(status: str | None, limit: int) -> None:
    """Referrals newest first: who referred whom, how it stands and what each side got."""
    with unit_of_work() as session:
        page = services.list_referrals(session, status=status, before_id=None, limit=limit)
    rows = [
        (
            str(r.id),
            "-" if r.referrer_id is None else str(r.referrer_id),
            str(r.referee_id),
            r.status + (f" ({r.reason})" if r.reason else ""),
            r.created_at.date().isoformat(),
            f"{r.referrer_points}/{r.referee_points}",
        )
        for r in page.referrals
    ]
    headings = ("id", "referrer", "friend", "status", "enrolled", "points given")
    click.echo(table(headings, rows) if rows else "no referrals")


@referrals_group.command("funnel", short_help="The programme's funnel over some days.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), required=True, help="YYYY-MM-DD")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), required=True, help="YYYY-MM-DD")
def funnel(since: Any, until: Any) -> None:
    """Link opens on those days (program's time zone), the referrals recorded on them and
    what became of them."""
    first: date = since.date()
    last: date = until.date()
    with unit_of_work() as session:
        found = services.program_funnel(session, first, last)
    counts = found.funnel
    rows = [
        (name, str(getattr(counts, name)))
        for name in ("invited", "enrolled", "pending", "qualified", "rewarded", "reversed")
    ]
    rows += [(f"refused: {reason}", str(n)) for reason, n in counts.refused.items()]
    click.echo(f"{found.since} to {found.until} ({found.timezone})")
    click.echo(table(("stage", "count"), rows))


@referrals_group.command(
    "remember-contacts", short_help="Remember the contacts of the members already there."
)
def remember_contacts() -> None:
    """Keep the contact digests of every member not erased, so the `already_member` guard
    knows the members who enrolled before referrals existed (running it again adds nothing)."""
    key = services.contact_key(load_settings().secret_key)
    with unit_of_work() as session:
        count = services.remember_existing_contacts(session, key, clock.now())
    click.echo(f"contacts of {count:,} members remembered")


COMMANDS: list[click.Command] = [referrals_group]
