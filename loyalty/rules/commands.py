"""`loyalty rules …`: earning rules from the command line, validated and audited exactly as the
API does (the same service, the same field messages). loyalty/cli.py registers COMMANDS."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from loyalty.commandline import JSON_FILE, actor, clock, read_json, refusal, table, unit_of_work
from loyalty.program import get_program
from loyalty.rules.models import EarnRule
from loyalty.rules.services import (
    InvalidRule,
    archive_rule,
    create_rule,
    get_rule,
    list_rules,
    update_rule,
)

RULE_FILE = JSON_FILE


def _moment(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def _window(rule: EarnRule, zone: ZoneInfo) -> str:
    if rule.starts_at is None and rule.ends_at is None:
        return "always"
    if rule.ends_at is None:
        return f"from {_moment(rule.starts_at, zone)}"
    if rule.starts_at is None:
        return f"until {_moment(rule.ends_at, zone)}"
    return f"{_moment(rule.starts_at, zone)} to {_moment(rule.ends_at, zone)}"


def _cap(rule: EarnRule) -> str:
    return f"{rule.cap_points:,}/{rule.cap_period}" if rule.cap_points is not None else "-"


@click.group("rules", short_help="List, add, change and archive earning rules.")
def rules_group() -> None:
    """Earning rules: list them in evaluation order, add, change and archive them (audited)."""


@rules_group.command("list", short_help="List the rules in the order a sale uses them.")
@click.option("--all", "include_archived", is_flag=True, help="archived rules too")
def list_command(include_archived: bool) -> None:  # noqa: FBT001 - a click flag
    """The rules in the order a sale evaluates them: priority, then id."""
    with unit_of_work() as session:
        zone = get_program(session).zone
        found = list_rules(session, include_archived=include_archived)
    if not found:
        click.echo("no rules: every sale earns the program's own rate")
        return
    headings: tuple[str, ...] = ("id", "priority", "name", "kind", "stacks", "window", "cap")
    if include_archived:
        headings += ("archived",)
    rows = []
    for rule in found:
        row = (
            str(rule.id),
            str(rule.priority),
            rule.name,
            rule.kind,
            "yes" if rule.stackable else "no",
            _window(rule, zone),
            _cap(rule),
        )
        rows.append(row + ((_moment(rule.archived_at, zone),) if include_archived else ()))
    click.echo(table(headings, rows))
    click.echo(f"times in {zone.key}")


@rules_group.command("add", short_help="Add the rules in a JSON file.")
@click.argument("path", metavar="FILE.json", type=RULE_FILE)
def add_command(path: Path) -> None:
    """Add the rule in FILE.json (one rule object, or a list of them).

    Each rule is validated as the API does; if any is refused, its fields are named, the
    command exits 1 and no rule of the file is created.
    """
    content = read_json(path)
    definitions = content if isinstance(content, list) else [content]
    if not definitions:
        raise click.ClickException(f"{path} holds an empty list: no rule to add")
    now = clock.now()
    with unit_of_work() as session:
        created, refused = [], []
        for number, definition in enumerate(definitions, start=1):
            try:
                created.append(create_rule(session, definition, actor=actor(), now=now))
            except InvalidRule as exc:
                name = definition.get("name") if isinstance(definition, dict) else None
                label = f"rule {number} of {len(definitions)}" + (f" ({name})" if name else "")
                refused.append(refusal(label, exc))
        if refused:
            for text in refused:
                click.echo(text, err=True)
            click.echo(
                f"{len(refused)} of {len(definitions)} refused: no rule of {path} was created",
                err=True,
            )
            sys.exit(1)  # inside the unit of work: the rules created above are rolled back
    for rule in created:
        click.echo(f"rule {rule.id} created: {rule.name} ({rule.kind}, priority {rule.priority})")


@rules_group.command("change", short_help="Change a rule from a JSON file of fields.")
@click.argument("rule_id", metavar="ID", type=int)
@click.argument("path", metavar="FILE.json", type=RULE_FILE)
def change_command(rule_id: int, path: Path) -> None:
    """Change the fields FILE.json names; the whole rule is validated again.

    Sales from now on use the new rule; sales already recorded keep their points.
    """
    changes = read_json(path)
    if not isinstance(changes, dict):
        raise click.ClickException(f"{path} must hold one JSON object: the fields to change")
    with unit_of_work() as session:
        try:
            rule = update_rule(session, rule_id, changes, actor=actor(), now=clock.now())
        except InvalidRule as exc:
            click.echo(refusal(f"rule {rule_id}", exc), err=True)
            sys.exit(1)
    click.echo(f"rule {rule.id} changed: {', '.join(sorted(changes)) or 'nothing'}")


@rules_group.command("archive", short_help="Stop a rule at once; its history stays.")
@click.argument("rule_id", metavar="ID", type=int)
def archive_command(rule_id: int) -> None:
    """Stop a rule at once. Its history stays, and points already earned are kept."""
    with unit_of_work() as session:
        already = get_rule(session, rule_id).archived_at is not None
        rule = archive_rule(session, rule_id, actor=actor(), now=clock.now())
    state = "was already archived" if already else "archived"
    click.echo(f"rule {rule.id} ({rule.name}) {state}")


COMMANDS: list[click.Command] = [rules_group]
