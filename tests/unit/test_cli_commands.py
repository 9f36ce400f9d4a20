"""The command group loads each command's modules only when it is needed."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from trialship.cli import COMMANDS, SUMMARIES, TrialshipGroup, main


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
    assert _python(code).strip().splitlines()[-1] == "[]"


def _python(code: str) -> str:
    """What `code` prints, run by a fresh interpreter (its own sys.modules)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def _load_every_command() -> click.Context:
    ctx = click.Context(main)
    for name in COMMANDS:
        main.get_command(ctx, name)
    return ctx


def test_each_summary_is_the_first_sentence_of_its_command() -> None:
    ctx = _load_every_command()
    assert set(SUMMARIES) == set(COMMANDS)
    for name, summary in SUMMARIES.items():
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(10**6) == summary, name


@pytest.mark.parametrize("width", [50, 60, 80, 200])
def test_the_listing_is_clicks_own_whether_commands_are_loaded_or_not(width: int) -> None:
    ctx = _load_every_command()
    clicks = click.HelpFormatter(width=width)
    click.Group.format_commands(main, ctx, clicks)
    ours = click.HelpFormatter(width=width)
    unloaded = TrialshipGroup(name="trialship")  # no command loaded: every row from SUMMARIES
    unloaded.format_commands(click.Context(unloaded), ours)
    assert ours.getvalue() == clicks.getvalue()
    assert not unloaded.commands


def test_help_loads_no_command() -> None:
    code = (
        "import sys\n"
        "from trialship.cli import main\n"
        "main(['--help'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('trialship.cli.')))\n"
    )
    out = _python(code)
    assert "audit" in out and "worker" in out  # the listing itself
    assert out.strip().splitlines()[-1] == "[]"


def test_completion_offers_clicks_own_items_without_loading_commands() -> None:
    ctx = _load_every_command()
    unloaded = TrialshipGroup(name="trialship", params=list(main.params))

    def items(group: click.Group, incomplete: str) -> list[tuple[str, str | None]]:
        if group is main:
            found = click.Group.shell_complete(main, ctx, incomplete)
        else:
            found = group.shell_complete(click.Context(group), incomplete)
        return [(item.value, item.help) for item in found]

    for incomplete in ("", "s", "su", "--"):
        assert items(unloaded, incomplete) == items(main, incomplete), incomplete
    assert not unloaded.commands


def test_completing_a_command_name_loads_no_command() -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(_TRIALSHIP_COMPLETE='bash_complete', COMP_WORDS='trialship s', "
        "COMP_CWORD='1')\n"
        "from trialship.cli import main\n"
        "try:\n"
        "    main(prog_name='trialship')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('trialship.cli.')))\n"
    )
    out = _python(code).splitlines()
    assert {"plain,send", "plain,serve", "plain,site", "plain,subject", "plain,submission"} <= set(
        out
    )
    assert out[-1] == "[]"
