"""The command line: the same use cases as the web UI, for the office and for scripts.

Errors print one line (`Error: ...`) and exit non-zero; nothing is half-saved. The commands
live in one module per area; this module holds the group and the helpers they share.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from trialship import __version__
from trialship.app import Runtime, bootstrap
from trialship.errors import TrialshipError, ValidationError
from trialship.registry.models import Trial
from trialship.services import trials
from trialship.services.authz import Actor

F = TypeVar("F", bound=Callable[..., Any])


class TrialshipGroup(click.Group):
    """Turns a TrialshipError anywhere below into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrialshipError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


def get_runtime(ctx: click.Context) -> Runtime:
    obj = ctx.ensure_object(dict)
    if "runtime" not in obj:
        overrides = {"data_dir": obj["data"]} if obj.get("data") else None
        obj["runtime"] = bootstrap(overrides)
    runtime: Runtime = obj["runtime"]
    return runtime


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor.command_line(f"cli:{who}")


@contextmanager
def unit_of_work() -> Iterator[tuple[Runtime, Session]]:
    runtime = get_runtime(click.get_current_context())
    with runtime.db.unit_of_work() as session:
        yield runtime, session


def find_trial(session: Session, runtime: Runtime, protocol_id: str) -> Trial:
    return trials.trial_by_protocol(session, cli_actor(), protocol_id, runtime.today())


def trial_option(func: F) -> F:
    return click.option(
        "--trial",
        "protocol_id",
        required=True,
        metavar="PROTOCOL_ID",
        help="The trial, by its protocol ID.",
    )(func)


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


from trialship.cli import (  # noqa: E402  (commands register on main)
    accounts,
    deid,
    destinations,
    discs,
    imports,
    media,
    registry,
    setup,
    submissions,
    transfer,
)

__all__ = [
    "accounts",
    "deid",
    "destinations",
    "discs",
    "imports",
    "main",
    "media",
    "registry",
    "setup",
    "submissions",
    "transfer",
]
