"""`loyalty` commands of the ledger; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from loyalty.commandline import actor, clock, unit_of_work
from loyalty.ledger.adjustments import adjust_points
from loyalty.ledger.services import check_ledger
from loyalty.members.models import Member


@click.command("check-ledger", short_help="Prove that every balance equals its entries and lots.")
def check_ledger_command() -> None:
    """Verify that every balance equals its entries and lots; exit 1 on any difference."""
    with unit_of_work() as session:
        problems = check_ledger(session)
        ids = {problem.member_id for problem in problems}
        names = {
            row.id: row.name
            for row in session.execute(select(Member.id, Member.name).where(Member.id.in_(ids)))
        }
    for problem in problems:
        name = names.get(problem.member_id)
        who = f"member {problem.member_id}" + (f" ({name})" if name else "")
        click.echo(f"{who}: {problem.problem}", err=True)
    if problems:
        click.echo(f"{len(problems)} discrepancies", err=True)
        sys.exit(1)
    click.echo("ledger is consistent")


@click.command(
    "adjust-points",
    short_help="Add or remove a member's points by hand, audited.",
    # POINTS may be negative: "-50" is a number here, not an option.
    context_settings={"ignore_unknown_options": True},
)
@click.argument("member_id", type=int)
@click.argument("points", type=int)
@click.option("--reason", required=True, help="Why, for the audit log (3 to 200 characters).")
def adjust_points_command(member_id: int, points: int, reason: str) -> None:
    """Add (POINTS > 0) or remove (POINTS < 0) a member's points by hand, audited.

    e.g. `loyalty adjust-points 42 -150 --reason "duplicate sale"`; removing more than the
    member has available is refused.
    """
    with unit_of_work() as session:
        done = adjust_points(
            session,
            member_id=member_id,
            points=points,
            reason=reason,
            actor=actor(),
            now=clock.now(),
        )
    click.echo(f"member {member_id}: {points:+,} points ({done.reason}), entry {done.entry_id}")
    click.echo(f"before: available {done.before.available:,}, pending {done.before.pending:,}")
    click.echo(f"after:  available {done.after.available:,}, pending {done.after.pending:,}")


COMMANDS: list[click.Command] = [check_ledger_command, adjust_points_command]
