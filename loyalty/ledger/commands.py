"""`loyalty` commands of this area; loyalty/cli.py registers every one in COMMANDS."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
