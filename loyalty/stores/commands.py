"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from loyalty.commandline import actor, clock, table, unit_of_work
from loyalty.stores.services import (
    TerminalInfo,
    list_terminals,
    revoke_terminal_by_id,
    rotate_terminal_key,
)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _state(terminal: TerminalInfo, now: datetime) -> str:
    if terminal.revoked_at is not None:
        return f"revoked {_when(terminal.revoked_at)}"
    until = terminal.previous_key_valid_until
    if until is not None and until > now:
        return f"old key works until {_when(until)}"
    return "active"


@click.command("terminals", short_help="List the tills, by store, with the state of their keys.")
def terminals_command() -> None:
    """List every till: its id (for rotate-terminal-key and revoke-terminal), store, name, when
    its key was made or last rotated, and whether it is revoked."""
    now = clock.now()
    with unit_of_work() as session:
        rows = [
            [
                str(t.id),
                t.store_code,
                t.name,
                _when(t.rotated_at or t.created_at),
                _state(t, now),
            ]
            for t in list_terminals(session)
        ]
    click.echo(table(["id", "store", "name", "key since", "state"], rows))


@click.command("rotate-terminal-key", short_help="Give a till a new key, shown once.")
@click.argument("terminal_id", type=int)
@click.option(
    "--grace-minutes",
    type=click.IntRange(0, 7 * 24 * 60),
    default=0,
    show_default=True,
    help="How long the old key keeps working while the new one is put in the till.",
)
def rotate_terminal_key_command(terminal_id: int, grace_minutes: int) -> None:
    """Give a till a new key, printed once; the old key stops after the grace period."""
    with unit_of_work() as session:
        rotated = rotate_terminal_key(
            session,
            terminal_id=terminal_id,
            grace=timedelta(minutes=grace_minutes),
            actor=actor(),
            now=clock.now(),
        )
    until = rotated.terminal.previous_key_valid_until
    click.echo(f"terminal {terminal_id} ({rotated.terminal.name}) has a new key")
    click.echo(
        f"the old key works until {_when(until)}" if until else "the old key stopped working"
    )
    click.echo(f"API key (shown once, store it in the till now): {rotated.key}")


@click.command("revoke-terminal", short_help="Stop a till's key at once.")
@click.argument("terminal_id", type=int)
def revoke_terminal_command(terminal_id: int) -> None:
    """Stop a till at once (a stolen till), with any old key still in its grace period.
    rotate-terminal-key brings it back with a new key."""
    with unit_of_work() as session:
        revoke_terminal_by_id(session, terminal_id=terminal_id, actor=actor(), now=clock.now())
    click.echo(f"terminal {terminal_id} revoked")


COMMANDS: list[click.Command] = [
    terminals_command,
    rotate_terminal_key_command,
    revoke_terminal_command,
]
