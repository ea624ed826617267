"""`loyalty …`: the operator's commands. Plain click over the domain services (no Flask)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select

from loyalty import migrate
from loyalty.cards.services import create_batch, printer_csv
from loyalty.commandline import CommandGroup, actor, clock, lookup_keys, unit_of_work
from loyalty.demo import seed_demo
from loyalty.ledger.services import check_ledger
from loyalty.members.models import Member
from loyalty.program import ensure_program
from loyalty.settings import load_settings
from loyalty.stores.services import batch_terminal, create_store, create_terminal, find_store
from pos_adapter.batch_import import ImportFileError, count_sales, import_sales


@click.group(cls=CommandGroup)
def main() -> None:
    """Loyalty platform administration. Reads LOYALTY_DATABASE_URL like the server does."""


@main.command("migrate")
def migrate_command() -> None:
    """Create or upgrade every table, and the default program settings."""
    migrate.upgrade(load_settings().database_url)
    with unit_of_work() as session:
        ensure_program(session, clock.now())
    click.echo("database is up to date")


@main.command("create-store")
@click.argument("code")
@click.argument("name")
def create_store_command(code: str, name: str) -> None:
    """Add a store, e.g. `loyalty create-store LDN-01 "London Bridge"`."""
    with unit_of_work() as session:
        store = create_store(session, code=code, name=name, actor=actor(), now=clock.now())
        click.echo(f"store {store.code} created (id {store.id})")


@main.command("create-terminal")
@click.argument("store_code")
@click.argument("name")
def create_terminal_command(store_code: str, name: str) -> None:
    """Add a till to a store and print its API key. The key is shown this once only."""
    with unit_of_work() as session:
        store = find_store(session, store_code)
        terminal, key = create_terminal(
            session, store=store, name=name, actor=actor(), now=clock.now()
        )
        click.echo(f"terminal {terminal.id} ({name}) for store {store.code}")
        click.echo(f"API key (shown once, store it in the till now): {key}")


@main.command("create-cards")
@click.argument("count", type=click.IntRange(1, 100_000))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV for the card printer: number, printed number, QR payload",
)
@click.option("--note", default=None, help="e.g. the print run or campaign")
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


@main.command("import-transactions")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", "store_code", required=True, help="code of the store the sales belong to")
def import_transactions_command(path: Path, store_code: str) -> None:
    """Import past sales from a CSV (see pos_adapter/batch_import.py for the columns).

    Sales already imported are recognised by their external_id and left as they were.
    """
    try:
        total = count_sales(path)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    with unit_of_work() as session:
        store = find_store(session, store_code)
        terminal = batch_terminal(session, store=store, actor=actor(), now=clock.now())
        with click.progressbar(length=total, label="importing sales", file=sys.stderr) as bar:
            report = import_sales(
                session,
                path,
                terminal=terminal,
                keys=lookup_keys(),
                now=clock.now,
                on_sale=lambda: bar.update(1),
                checkpoint=session.commit,
            )
    click.echo(
        f"{report.recorded} sales recorded, {report.replayed} already there, "
        f"{len(report.failed)} refused"
    )
    for row, external_id, why in report.failed:
        click.echo(f"  row {row} (sale {external_id}): {why}", err=True)
    if report.failed:
        sys.exit(1)


@main.command("check-ledger")
def check_ledger_command() -> None:
    """Verify that every balance equals its entries and lots. Exits 1 on any difference."""
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


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Add the demo store, till, members and sales (again: changes nothing but the till key)."""
    with unit_of_work() as session:
        ensure_program(session, clock.now())
        seed = seed_demo(session, keys=lookup_keys(), clock=clock)
    state = "created" if seed.created else "already there"
    click.echo(f"demo store {seed.store.code}: {state}; {len(seed.members)} members")
    click.echo(f"demo till key (new each seed): {seed.terminal_key}")


def run() -> None:
    main()


if __name__ == "__main__":
    run()


def _register_area_commands() -> None:
    """Each area keeps its commands beside its services, in `<area>/commands.py`."""
    from loyalty.ledger import commands as ledger_commands  # noqa: PLC0415
    from loyalty.members import commands as members_commands  # noqa: PLC0415
    from loyalty.reports import commands as reports_commands  # noqa: PLC0415
    from loyalty.rules import commands as rules_commands  # noqa: PLC0415
    from loyalty.staff import commands as staff_commands  # noqa: PLC0415
    from loyalty.tiers import commands as tiers_commands  # noqa: PLC0415

    for module in (
        ledger_commands,
        members_commands,
        reports_commands,
        rules_commands,
        staff_commands,
        tiers_commands,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register_area_commands()
