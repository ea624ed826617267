"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import click

from loyalty.commandline import actor, clock, table, unit_of_work
from loyalty.staff.services import Scope, create_staff_key, list_staff_keys, revoke_staff_key


@click.command("create-staff-key", short_help="Create a staff key with scopes, shown once.")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="what the key may do; repeat for several",
)
def create_staff_key_command(name: str, scopes: tuple[str, ...]) -> None:
    """A key for the marketer's console or a back-office system, printed once."""
    with unit_of_work() as session:
        staff_key, key = create_staff_key(
            session, name=name, scopes=list(scopes), actor=actor(), now=clock.now()
        )
        click.echo(f"staff key {staff_key.id} ({name}): {', '.join(staff_key.scopes)}")
        click.echo(f"API key (shown once, store it now): {key}")


@click.command("revoke-staff-key", short_help="Stop a staff key at once.")
@click.argument("key_id", type=int)
def revoke_staff_key_command(key_id: int) -> None:
    """Stop a staff key at once."""
    with unit_of_work() as session:
        revoke_staff_key(session, key_id=key_id, actor=actor(), now=clock.now())
    click.echo(f"staff key {key_id} revoked")


@click.command("staff-keys", short_help="List the staff keys and their scopes.")
def staff_keys_command() -> None:
    """List every staff key: id (for revoke-staff-key), name, scopes, made, revoked; never the
    key itself, which was shown once when it was made."""
    with unit_of_work() as session:
        rows = [
            [
                str(k.id),
                k.name,
                ",".join(k.scopes),
                k.created_at.strftime("%Y-%m-%d"),
                "" if k.revoked_at is None else k.revoked_at.strftime("revoked %Y-%m-%d"),
            ]
            for k in list_staff_keys(session)
        ]
    click.echo(table(["id", "name", "scopes", "made", "state"], rows))


COMMANDS: list[click.Command] = [
    create_staff_key_command,
    revoke_staff_key_command,
    staff_keys_command,
]
