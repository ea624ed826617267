"""`loyalty` commands of the POS adapter. The domain's CLI (loyalty/cli.py) must not import this
package, so these register themselves through the `loyalty.commands` entry point group
(pyproject.toml), the way Flask's own CLI finds the commands of its extensions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from loyalty.commandline import actor, clock, lookup_keys, unit_of_work
from loyalty.stores.services import batch_terminal, find_store
from pos_adapter.batch_import import ImportFileError, count_sales, import_sales


@click.command("import-transactions", short_help="Import past sales from a CSV file, exactly once.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", "store_code", required=True, help="Code of the store the sales belong to.")
def import_transactions_command(path: Path, store_code: str) -> None:
    """Import past sales from a CSV file (see pos_adapter/batch_import.py for the columns).

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
