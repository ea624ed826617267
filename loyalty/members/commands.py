"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import click

from loyalty.commandline import actor, clock, unit_of_work
from loyalty.members.services import erase, set_blocked


@click.command("block-member", short_help="Refuse a member at every till, audited.")
@click.argument("member_id", type=int)
@click.option("--reason", required=True, help="why, for the audit log")
def block_member_command(member_id: int, reason: str) -> None:
    """Refuse a member at every till (fraud, abuse); their email and phone stay reserved."""
    with unit_of_work() as session:
        set_blocked(
            session,
            member_id=member_id,
            blocked=True,
            reason=reason,
            actor=actor(),
            now=clock.now(),
        )
    click.echo(f"member {member_id} blocked")


@click.command("unblock-member", short_help="Lift a member's block, audited.")
@click.argument("member_id", type=int)
@click.option("--reason", required=True, help="why, for the audit log")
def unblock_member_command(member_id: int, reason: str) -> None:
    """Lift a block."""
    with unit_of_work() as session:
        set_blocked(
            session,
            member_id=member_id,
            blocked=False,
            reason=reason,
            actor=actor(),
            now=clock.now(),
        )
    click.echo(f"member {member_id} unblocked")


@click.command("erase-member", short_help="Erase a member's personal data, keeping figures.")
@click.argument("member_id", type=int)
@click.option("--reason", required=True, help="e.g. the request's reference")
@click.confirmation_option(prompt="Erase this member's personal data for good?")
def erase_member_command(member_id: int, reason: str) -> None:
    """The right to erasure: personal data removed, cards stopped, figures kept."""
    with unit_of_work() as session:
        erase(session, member_id=member_id, reason=reason, actor=actor(), now=clock.now())
    click.echo(f"member {member_id} erased")


COMMANDS: list[click.Command] = [
    block_member_command,
    unblock_member_command,
    erase_member_command,
]
