"""`loyalty …`: the operator's commands. Plain click over the domain services (no Flask).

Each area keeps its commands beside its services (`<area>/commands.py`, a COMMANDS list); the
packages above the domain (the POS adapter) add theirs through the `loyalty.commands` entry
point group, since the domain may not import them."""

from __future__ import annotations

import os
import sqlite3
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path

import click

from loyalty import migrate
from loyalty.backup import NotSqlite, backup_sqlite
from loyalty.cards.services import create_batch, printer_csv
from loyalty.commandline import CommandGroup, actor, clock, unit_of_work
from loyalty.coupons import commands as coupons_commands
from loyalty.demo import (
    DEMO_CASHIER,
    DEMO_CASHIER_FILE,
    DEMO_KEY_FILE,
    DEMO_STAFF_KEY_FILE,
    seed_demo,
)
from loyalty.jobs import commands as jobs_commands
from loyalty.ledger import commands as ledger_commands
from loyalty.members import commands as members_commands
from loyalty.program import ensure_program
from loyalty.referrals import commands as referrals_commands
from loyalty.reports import commands as reports_commands
from loyalty.rules import commands as rules_commands
from loyalty.settings import load_settings
from loyalty.staff import commands as staff_commands
from loyalty.stores import commands as stores_commands
from loyalty.stores.services import create_store, create_terminal, find_store
from loyalty.tiers import commands as tiers_commands

PLUGIN_GROUP = "loyalty.commands"


def _version() -> str:
    try:
        return version("loyalty")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@click.group(cls=CommandGroup)
@click.version_option(_version(), prog_name="loyalty", message="%(prog)s %(version)s")
def main() -> None:
    """Loyalty platform administration. Reads LOYALTY_DATABASE_URL like the server does."""


@main.command("migrate", short_help="Create or upgrade the tables and the program.")
def migrate_command() -> None:
    """Create or upgrade every table, and the default program settings."""
    done = migrate.upgrade_reporting(load_settings().database_url)
    with unit_of_work() as session:
        ensure_program(session, clock.now())
    click.echo(done.describe())


@main.command("create-store", short_help="Add a store.")
@click.argument("code")
@click.argument("name")
def create_store_command(code: str, name: str) -> None:
    """Add a store, e.g. `loyalty create-store LDN-01 "London Bridge"`."""
    with unit_of_work() as session:
        store = create_store(session, code=code, name=name, actor=actor(), now=clock.now())
        click.echo(f"store {store.code} created (id {store.id})")


@main.command("create-terminal", short_help="Add a till to a store and print its key once.")
@click.argument("store_code")
@click.argument("name")
def create_terminal_command(store_code: str, name: str) -> None:
    """Add a till to a store and print its API key, which is shown this once only."""
    with unit_of_work() as session:
        store = find_store(session, store_code)
        terminal, key = create_terminal(
            session, store=store, name=name, actor=actor(), now=clock.now()
        )
        click.echo(f"terminal {terminal.id} ({name}) for store {store.code}")
        click.echo(f"API key (shown once, store it in the till now): {key}")


@main.command("create-cards", short_help="Print a batch of cards to be activated at a till.")
@click.argument("count", type=click.IntRange(1, 100_000))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The CSV for the card printer: number, printed number, QR payload.",
)
@click.option("--note", default=None, help="A note, e.g. the print run or campaign.")
def create_cards_command(count: int, out: Path, note: str | None) -> None:
    """Create a batch of unassigned cards, to be activated at a till."""
    # Written beside the target and renamed once the cards are committed: a file that cannot be
    # written creates no cards, and a failed commit leaves no file of cards that do not exist.
    partial = out.with_name(f"{out.name}.partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
    try:
        with handle, unit_of_work() as session:
            batch, cards = create_batch(
                session,
                card_key=load_settings().card_key,
                size=count,
                note=note,
                actor=actor(),
                now=clock.now(),
            )
            handle.write(printer_csv(cards))
            handle.flush()
        partial.replace(out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"batch {batch.id}: {count} cards written to {out}")


@main.command("backup", short_help="Copy the embedded SQLite database while it runs.")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(target: Path) -> None:
    """Copy the embedded SQLite database to TARGET, online: tills keep working meanwhile.

    For PostgreSQL use pg_dump or a base backup with WAL archiving (README, "Backups").
    """
    url = load_settings().database_url
    try:
        done = backup_sqlite(url, target)
    except NotSqlite as exc:
        raise click.ClickException(
            f"{exc}: back PostgreSQL up with pg_dump -Fc, or a base backup and WAL archiving"
        ) from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot back up to {target}: {exc}") from exc
    click.echo(f"backed up {done.pages:,} pages to {done.path}")


def _read_demo_key(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _write_demo_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")


@main.command("seed-demo", short_help="Add the demo shop; seeding again changes nothing.")
@click.option(
    "--new-key", is_flag=True, help="Give the demo till and staff new keys (the old ones stop)."
)
def seed_demo_command(*, new_key: bool) -> None:
    """Add the demo store, till, members and sales; seeding again changes nothing."""
    settings = load_settings()
    key_file = settings.instance_path / DEMO_KEY_FILE
    staff_file = settings.instance_path / DEMO_STAFF_KEY_FILE
    with unit_of_work() as session:
        ensure_program(session, clock.now())
        seed = seed_demo(
            session,
            keys=settings.lookup_keys,
            clock=clock,
            known_key=None if new_key else _read_demo_key(key_file),
            known_staff_key=None if new_key else _read_demo_key(staff_file),
        )
    _write_demo_key(key_file, seed.terminal_key)
    _write_demo_key(staff_file, seed.staff_key)
    state = "created" if seed.created else "already there"
    click.echo(f"demo store {seed.store.code}: {state}; {len(seed.members)} members")
    renewed = "new" if seed.key_renewed else "unchanged"
    click.echo(f"demo till key ({renewed}, kept in {key_file}): {seed.terminal_key}")
    renewed = "new" if seed.staff_key_renewed else "unchanged"
    click.echo(f"demo staff key, every scope ({renewed}, kept in {staff_file})")
    cashier_file = settings.instance_path / DEMO_CASHIER_FILE
    if seed.cashier_password is not None:
        _write_demo_key(cashier_file, seed.cashier_password)
    click.echo(f"demo cashier {DEMO_CASHIER} for /till/ (password kept in {cashier_file})")


for _area in (
    coupons_commands,
    jobs_commands,
    ledger_commands,
    members_commands,
    referrals_commands,
    reports_commands,
    rules_commands,
    staff_commands,
    stores_commands,
    tiers_commands,
):
    for _command in _area.COMMANDS:
        main.add_command(_command)
for _plugin in entry_points(group=PLUGIN_GROUP):
    main.add_command(_plugin.load(), _plugin.name)


def run() -> None:
    main()


if __name__ == "__main__":
    run()
