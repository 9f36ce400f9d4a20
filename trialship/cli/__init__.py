"""The command line: the same use cases as the web UI, for the office and for scripts.

Errors print one line (`Error: ...`) and exit non-zero; nothing is half-saved. The commands
live in one module per area; this module holds the group and the helpers they share.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn

from trialship import __version__
from trialship.config import load_settings
from trialship.errors import TrialshipError, ValidationError

F = TypeVar("F", bound=Callable[..., Any])


# Each command and the modules that define it and its subcommands. A command's modules are
# imported when it runs (or is listed), not before: a command that needs no registry, such as
# `media build`, then never loads the web application, the database layer or the other
# commands (about 65 MB of a disc build's memory).
COMMANDS: dict[str, tuple[str, ...]] = {
    "audit": ("registry",),
    "db": ("setup",),
    "deid": ("deid",),
    "destination": ("destinations",),
    "disc": ("media", "discs"),
    "exam": ("imports",),
    "import": ("imports",),
    "init": ("setup",),
    "jobs": ("submissions",),
    "media": ("media",),
    "receipt": ("deid",),
    "rule": ("submissions",),
    "send": ("transfer",),
    "serve": ("setup",),
    "site": ("registry",),
    "subject": ("registry",),
    "submission": ("submissions",),
    "submit": ("submissions",),
    "timepoint": ("registry",),
    "token": ("accounts",),
    "trial": ("registry",),
    "user": ("accounts",),
    "worker": ("setup",),
}


# What `trialship --help` says of each command: the first sentence of its help, kept here so
# listing the commands loads none of them (that took 1.5 s). A test holds them to the commands.
SUMMARIES: dict[str, str] = {
    "audit": "Show the audit trail, newest first.",
    "db": "Database schema: upgrade, check, downgrade.",
    "deid": "De-identify SOURCES (files, folders, zips) into OUT with PROFILE.toml, no database.",
    "destination": "Destinations of a trial: SFTP, DICOM C-STORE and DICOMweb servers.",
    "disc": "Disc sets from the trial's exams (build, list) and burning.",
    "exam": "Imported exams: list, show, receipt, report, quarantine, timepoint, reviewed, key.",
    "import": "Import DICOM files, folders and zips into a trial: de-identified, keyed, receipted.",
    "init": "Create the data folder and its keys, migrate the database, add the first admin.",
    "jobs": "Jobs of every kind (imports, disc builds, submissions): list, show, retry, cancel.",
    "media": "Disc images from folders of de-identified DICOM files (no database needed).",
    "receipt": "Signed receipts: verify.",
    "rule": "Automation: submit ready exams to a destination with no human step.",
    "send": "Send SOURCES (files; folders by their contents, recursively) to URL; resumes.",
    "serve": "Serve the web UI and the API with waitress (and run the job worker inside).",
    "site": "Sites of a trial.",
    "subject": "Subjects of a trial: add, import.",
    "submission": "Submissions of a trial: list, show, receipt.",
    "submit": "Send exams of the trial to one of its destinations, with a progress bar.",
    "timepoint": "The time point schedule of a trial.",
    "token": "API tokens for scripts: create, revoke.",
    "trial": "Trials: add, list, show.",
    "user": "Users: add, list, disable.",
    "worker": "Run the job queue's worker on its own (Redis-backed queues on many machines).",
}


class TrialshipGroup(click.Group):
    """Loads each command's modules when it is needed (COMMANDS), and turns a TrialshipError
    anywhere below into one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's own listing, with the summaries of the commands not loaded (SUMMARIES)."""
        listed = [
            (name, command)
            for name in self.list_commands(ctx)
            if (command := self._listed(ctx, name)) is not None and not command.hidden
        ]
        if not listed:
            return
        # As click does: the help column's width from the longest name that is shown.
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in listed])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Click's own completion, with the summaries of the commands not loaded."""
        results = [
            CompletionItem(name, help=command.get_short_help_str())
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
            and (command := self._listed(ctx, name)) is not None
            and not command.hidden
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))  # the options
        return results

    def _listed(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command as a listing shows it: a stand-in with its summary if not loaded."""
        if name in SUMMARIES and name not in self.commands:
            return click.Command(name, help=SUMMARIES[name])
        return self.get_command(ctx, name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in COMMANDS.get(cmd_name, ()):
            importlib.import_module(f"{__name__}.{module}")  # its commands register on main
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrialshipError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


def settings_overrides(ctx: click.Context) -> dict[str, Any] | None:
    """What the group's options set over the environment and the instance file."""
    data = ctx.ensure_object(dict).get("data")
    return {"data_dir": data} if data else None


def data_dir(ctx: click.Context) -> Path:
    """The data folder, from the settings alone: for the standalone commands (`deid`, `send`),
    which need its keys and journals but not the registry, its database or the web app."""
    return load_settings(settings_overrides(ctx)).data_dir


def trial_option(func: F) -> F:
    return click.option(
        "--trial",
        "protocol_id",
        required=True,
        metavar="PROTOCOL_ID",
        help="The trial, by its protocol ID.",
    )(func)


def print_or_write_receipt(document: dict[str, Any], out: Path | None) -> None:
    """A signed receipt as JSON on stdout, or into `out` (for `trialship receipt verify`)."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Receipt written to {out}")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def progress_bar(console: Console, *columns: ProgressColumn) -> Progress:
    """The bar of long commands: a description, the bar, then `columns` (default: time left);
    on stderr, drawn only on a terminal, gone when done."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *(columns or (TimeRemainingColumn(),)),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )


def read_password(env_var: str, prompt: str) -> str:
    value = os.environ.get(env_var)
    if value:
        return value
    if not sys.stdin.isatty():
        raise ValidationError(f"no terminal to ask for it: set {env_var}", field="password")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@click.group(cls=TrialshipGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trialship")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="TRIALSHIP_DATA",
    help="The data folder (default ./instance; env TRIALSHIP_DATA).",
)
@click.pass_context
def main(ctx: click.Context, data: Path | None) -> None:
    """trialship: register trials, de-identify exams and deliver them to sponsors."""
    ctx.ensure_object(dict)["data"] = data
