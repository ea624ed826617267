"""`loyalty` commands of the reports; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import csv
from dataclasses import astuple
from decimal import Decimal
from pathlib import Path

import click

from loyalty.commandline import clock, unit_of_work
from loyalty.reports.liability import (
    MOVEMENT_FIGURES,
    Breakage,
    LiabilityReport,
    Movements,
    liability_report,
    money_text,
)


def _percent(breakage: Breakage) -> str:
    if breakage.ratio is None:
        return "n/a (nothing earned)"
    percent = breakage.ratio * Decimal(100)
    return f"{percent:.2f} % ({breakage.basis_points:,} bp)"


_HEADINGS = {
    "earned": "earned",
    "redeemed": "redeemed",
    "expired": "expired",
    "reversed": "reversed",
    "adjusted_added": "adj. added",
    "adjusted_removed": "adj. removed",
    "other": "other",
    "net": "net",
}


def report_text(report: LiabilityReport) -> str:
    rate = money_text(report.redeem_value_minor, report.currency)
    held = (
        f"available {report.available_points:,} + pending {report.pending_points:,}, "
        f"held by {report.members_with_points:,} members"
    )
    breakage = (
        f"{report.from_month} to {report.to_month}: {_percent(report.breakage_window)}; "
        f"all time: {_percent(report.breakage_overall)}"
    )
    lines = [
        f"Points liability at {report.as_of:%Y-%m-%d %H:%M} UTC (months in {report.timezone})",
        f"outstanding   {report.outstanding_points:,} points ({held})",
        f"value         {report.value_text} ({report.redeem_points:,} points = {rate})",
        f"points owed   {report.points_owed:,}, by {report.members_owing:,} members",
        f"breakage      {breakage}",
        "",
    ]
    figures = [
        name for name in MOVEMENT_FIGURES if name != "other" or any(m.other for m in report.months)
    ]
    rows: list[Movements] = [*report.months, report.window]
    labels = [m.month for m in report.months] + ["total"]
    cells = [[f"{getattr(row, name):,}" for name in figures] for row in rows]
    widths = [
        max(len(_HEADINGS[name]), *(len(row[i]) for row in cells)) for i, name in enumerate(figures)
    ]
    lines.append(
        "month    " + "  ".join(_HEADINGS[n].rjust(w) for n, w in zip(figures, widths, strict=True))
    )
    for label, row in zip(labels, cells, strict=True):
        lines.append(
            f"{label:<9}" + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def write_csv(report: LiabilityReport, path: Path) -> None:
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["month", *MOVEMENT_FIGURES])
            for row in report.months:
                writer.writerow(astuple(row))
            writer.writerow(["total", *astuple(report.window)[1:]])
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.command("liability-report", short_help="Report the points liability and breakage by month.")
@click.option(
    "--from", "from_month", metavar="YYYY-MM", help="first month (default: 11 before --to)"
)
@click.option("--to", "to_month", metavar="YYYY-MM", help="last month (default: this month)")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the months to this CSV file",
)
def liability_report_command(
    from_month: str | None, to_month: str | None, csv_path: Path | None
) -> None:
    """Points outstanding and their value, and earned, redeemed, expired, reversed and adjusted
    points by month in the program's time zone, with breakage (expired / earned)."""
    with unit_of_work() as session:
        report = liability_report(
            session, now=clock.now(), from_month=from_month, to_month=to_month
        )
    if csv_path is not None:
        write_csv(report, csv_path)
    click.echo(report_text(report))
    if csv_path is not None:
        click.echo(f"\n{len(report.months)} months written to {csv_path}")


COMMANDS: list[click.Command] = [liability_report_command]
