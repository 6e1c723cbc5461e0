"""The ``zoblib`` command itself: the console script, ``python -m zoblib``, ``--json`` everywhere."""

from __future__ import annotations

import click
from cli_helpers import Run

import zoblib
from zoblib.cli import main

COMMANDS = ["audit", "cache", "convert", "inspect", "verify"]


def test_console_script_version(run: Run) -> None:
    result = run("--version", script=True)
    assert result.returncode == 0 and result.stdout.strip() == f"zoblib, version {zoblib.__version__}"


def test_module_help_lists_the_commands(run: Run) -> None:
    result = run("--help")
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == COMMANDS
    cache = run("cache", "--help")
    assert [line.split()[0] for line in cache.stdout.split("Commands:")[1].splitlines() if line.strip()] == [
        "clear",
        "info",
        "ls",
        "prune",
    ]


def test_unknown_command_is_a_usage_error(run: Run) -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr


def leaves(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for command in group.commands.values():
        found += leaves(command) if isinstance(command, click.Group) else [command]
    return found


def test_every_command_takes_json() -> None:
    commands = leaves(main)
    assert len(commands) == 8
    for command in commands:
        assert "--json" in [opt for param in command.params for opt in param.opts], command.name
