"""`loyalty tiers …`: tiers, the periodic review and staff-given floors from the command line,
audited like the API's changes. loyalty/cli.py registers COMMANDS."""

from __future__ import annotations

import sys
from datetime import datetime, time, timedelta

import click

from loyalty.commandline import actor, clock, refusal, table, unit_of_work
from loyalty.errors import InvalidInput
from loyalty.program import TierBasis, get_program
from loyalty.tiers.services import (
    all_tiers,
    create_tier,
    remove_floor,
    review_tiers,
    set_floor,
    update_tier,
)

RANK = click.IntRange(0, 1000)
THRESHOLD = click.IntRange(0, 10**12)
MULTIPLIER = click.IntRange(100, 10_000)


def _multiplier(percent: int) -> str:
    return f"x{percent / 100:g}"


@click.group("tiers", short_help="List, add and change tiers; review; give floors.")
def tiers_group() -> None:
    """Tiers: list, add and change them, run the review, give a member a floor (audited)."""


@tiers_group.command("list", short_help="List the tiers and what qualifies for each.")
def list_command() -> None:
    """Every tier, lowest rank first, and what qualifies a member for it."""
    with unit_of_work() as session:
        program = get_program(session)
        found = all_tiers(session)
    if not found:
        click.echo("no tiers")
        return
    rows = [
        (
            str(tier.rank),
            tier.code,
            tier.name,
            f"{tier.threshold:,}",
            _multiplier(tier.earn_multiplier_percent),
            tier.perks,
        )
        for tier in found
    ]
    click.echo(table(("rank", "code", "name", "threshold", "earns", "perks"), rows))
    basis = "spend in minor units" if program.tier_basis == TierBasis.SPEND else "points earned"
    click.echo(
        f"thresholds: {basis} over {program.tier_window_months} months; "
        f"downgrades after {program.tier_grace_days} days of grace"
    )


@tiers_group.command("add", short_help="Add a tier.")
@click.argument("code")
@click.argument("name")
@click.option("--rank", type=RANK, required=True, help="higher is better; one tier per rank")
@click.option(
    "--threshold", type=THRESHOLD, required=True, help="what qualifies (program's tier basis)"
)
@click.option(
    "--multiplier", type=MULTIPLIER, default=100, show_default=True, help="earn percent: 150 = x1.5"
)
@click.option("--perks", default="", help="what the tier gives, shown to members")
def add_command(
    code: str, name: str, *, rank: int, threshold: int, multiplier: int, perks: str
) -> None:
    """Add a tier with its rank, threshold, earn multiplier and perks.

    For instance `loyalty tiers add GOLD Gold --rank 2 --threshold 100000 --multiplier 150`.
    """
    with unit_of_work() as session:
        try:
            tier = create_tier(
                session,
                code=code,
                name=name,
                rank=rank,
                threshold=threshold,
                earn_multiplier_percent=multiplier,
                perks=perks,
                actor=actor(),
                now=clock.now(),
            )
        except InvalidInput as exc:
            click.echo(refusal(f"tier {code}", exc), err=True)
            sys.exit(1)
    click.echo(
        f"tier {tier.code} ({tier.name}) added: rank {tier.rank}, threshold {tier.threshold:,}, "
        f"earns {_multiplier(tier.earn_multiplier_percent)}"
    )


@tiers_group.command("change", short_help="Change a tier's name, threshold, multiplier or perks.")
@click.argument("code")
@click.option("--name", default=None)
@click.option("--threshold", type=THRESHOLD, default=None)
@click.option("--multiplier", type=MULTIPLIER, default=None, help="earn percent: 150 = x1.5")
@click.option("--perks", default=None)
def change_command(
    code: str,
    *,
    name: str | None,
    threshold: int | None,
    multiplier: int | None,
    perks: str | None,
) -> None:
    """Change a tier. Members move at their next sale or at the review, never retroactively."""
    given = {
        "name": name,
        "threshold": threshold,
        "earn_multiplier_percent": multiplier,
        "perks": perks,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes:
        raise click.UsageError(
            "nothing to change: give --name, --threshold, --multiplier or --perks"
        )
    with unit_of_work() as session:
        try:
            tier = update_tier(session, code, changes, actor=actor(), now=clock.now())
        except InvalidInput as exc:
            click.echo(refusal(f"tier {code}", exc), err=True)
            sys.exit(1)
    click.echo(f"tier {tier.code} changed: {', '.join(sorted(changes))}")


@tiers_group.command("review", short_help="Run the tier review now.")
def review_command() -> None:
    """The periodic review: upgrades where a threshold is now met, downgrades after the grace
    period, and floors that have ended, now. Scheduled, it is the daily job review-tiers
    (`loyalty run-jobs --daily`, or `loyalty worker --schedule`)."""
    with unit_of_work() as session:
        report = review_tiers(session, get_program(session), clock.now())
    click.echo(f"upgraded: {report.upgraded}")
    click.echo(f"grace started: {report.grace_started}")
    click.echo(f"downgraded: {report.downgraded}")
    click.echo(f"floors ended: {report.floors_ended}")


@tiers_group.command("floor", short_help="Give a member a tier they cannot fall below.")
@click.argument("member_id", type=int)
@click.argument("tier_code", metavar="TIER")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="YYYY-MM-DD: the floor lasts to the end of that day (program's time zone); "
    "without it, until changed",
)
def floor_command(member_id: int, tier_code: str, until: datetime | None) -> None:
    """Give a member a tier they never fall below meanwhile (a VIP, a complaint put right)."""
    with unit_of_work() as session:
        zone = get_program(session).zone
        ends = None
        if until is not None:
            ends = datetime.combine(until.date() + timedelta(days=1), time(), tzinfo=zone)
        tier = set_floor(
            session,
            member_id=member_id,
            tier_code=tier_code,
            until=ends,
            actor=actor(),
            now=clock.now(),
        ).tier
    lasts = f"through {until:%Y-%m-%d} ({zone.key})" if until else "until changed"
    click.echo(f"member {member_id}: at least {tier_code} {lasts}")
    click.echo(f"tier now: {tier.code} ({tier.name})" if tier else "tier now: none")


@tiers_group.command("unfloor", short_help="End a member's staff-given tier floor now.")
@click.argument("member_id", type=int)
def unfloor_command(member_id: int) -> None:
    """End a member's staff-given floor now; they keep the tier they qualify for."""
    with unit_of_work() as session:
        tier = remove_floor(session, member_id=member_id, actor=actor(), now=clock.now()).tier
    click.echo(f"member {member_id}: no floor")
    click.echo(f"tier now: {tier.code} ({tier.name})" if tier else "tier now: none")


COMMANDS: list[click.Command] = [tiers_group]
