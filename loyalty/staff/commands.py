"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import sys

import click

from loyalty.commandline import actor, clock, table, unit_of_work
from loyalty.staff.accounts import (
    StaffAccountInfo,
    create_account,
    disable_account,
    find_store_id,
    list_accounts,
)
from loyalty.staff.models import StaffRole
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


@click.command("create-staff-account", short_help="Create a staff account that signs in.")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in StaffRole]), help="what they do"
)
@click.option("--store", "store_code", help="the code of their store (cashiers, store managers)")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="read the password from the first line of standard input instead of asking for it",
)
def create_staff_account_command(
    username: str, role: str, store_code: str | None, *, password_stdin: bool
) -> None:
    """An account for a person: a cashier or store manager of one store (--store), or a
    marketer or admin of none. The password (12 to 256 characters) is asked for twice, hidden,
    and only its argon2 hash is kept."""
    password = _read_password() if password_stdin else _ask_password()
    with unit_of_work() as session:
        store_id = None if store_code is None else find_store_id(session, store_code)
        account = create_account(
            session,
            username=username,
            password=password,
            role=role,
            store_id=store_id,
            actor=actor(),
            now=clock.now(),
        )
    click.echo(f"staff account {account.id} ({account.username}): {_role_at(account)}")


def _read_password() -> str:
    return sys.stdin.readline().rstrip("\r\n")


def _ask_password() -> str:
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _role_at(account: StaffAccountInfo) -> str:
    store = "" if account.store_code is None else f" at store {account.store_code}"
    return f"{account.role.value}{store}"


@click.command("disable-staff-account", short_help="Stop a staff account signing in.")
@click.argument("username")
def disable_staff_account_command(username: str) -> None:
    """The account can no longer sign in, and its open sessions end."""
    with unit_of_work() as session:
        account = disable_account(session, username=username, actor=actor(), now=clock.now())
    click.echo(f"staff account {account.username} disabled")


@click.command("staff-accounts", short_help="List the staff accounts, their roles and stores.")
def staff_accounts_command() -> None:
    """List every staff account: username, role, store, state, last sign-in; never a password
    or its hash."""
    with unit_of_work() as session:
        rows = [
            [
                str(a.id),
                a.username,
                a.role.value,
                a.store_code or "",
                "active" if a.disabled_at is None else a.disabled_at.strftime("disabled %Y-%m-%d"),
                "" if a.last_sign_in_at is None else a.last_sign_in_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for a in list_accounts(session)
        ]
    click.echo(table(["id", "username", "role", "store", "state", "last sign-in"], rows))


COMMANDS: list[click.Command] = [
    create_staff_key_command,
    revoke_staff_key_command,
    staff_keys_command,
    create_staff_account_command,
    disable_staff_account_command,
    staff_accounts_command,
]
