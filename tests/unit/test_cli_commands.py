"""The command group loads each command's modules only when it is needed."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from trialship.cli import COMMANDS, main


def _modules(command: click.Command) -> set[str]:
    found = {command.callback.__module__} if command.callback else set()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found |= _modules(sub)
    return found


def test_every_command_is_in_the_table_with_every_module_that_adds_to_it() -> None:
    for module in {m for modules in COMMANDS.values() for m in modules}:
        importlib.import_module(f"trialship.cli.{module}")
    registered = {
        name: {m.removeprefix("trialship.cli.") for m in _modules(command)}
        for name, command in main.commands.items()
    }
    assert registered == {name: set(modules) for name, modules in COMMANDS.items()}


def test_help_lists_every_command() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    assert all(main.get_command(ctx, name) is not None for name in COMMANDS)


@pytest.mark.parametrize(
    "command", [["media", "build"], ["deid"], ["receipt", "verify"], ["send"]], ids=" ".join
)
def test_standalone_commands_load_neither_the_database_layer_nor_the_web_app(
    command: list[str],
) -> None:
    code = (
        "import sys\n"
        "from trialship.cli import main\n"
        f"main({[*command, '--help']!r}, standalone_mode=False)\n"
        "print(sorted(m for m in ('sqlalchemy', 'flask', 'trialship.app') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
