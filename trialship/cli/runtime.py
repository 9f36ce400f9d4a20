"""What the commands that use the registry share: the runtime (settings, database, vault),
a unit of work, the command line's actor and a trial by its protocol ID.

Apart from the group (trialship.cli) so that commands that need no registry, such as
`media build`, never load the database layer or the web application.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from trialship.app import Runtime, bootstrap
from trialship.cli import settings_overrides
from trialship.registry.models import Trial
from trialship.services import trials
from trialship.services.authz import Actor


def get_runtime(ctx: click.Context, *, create: bool = False, schema: bool = True) -> Runtime:
    """The data folder's runtime. Only `create` (init, db upgrade) may make the folder and its
    keys; any other command refuses, in one line, a folder `init` never made, and unless told
    `schema=False` (the other db commands) a database not at this code's revision."""
    obj = ctx.ensure_object(dict)
    if "runtime" not in obj:
        made = bootstrap(settings_overrides(ctx), create=create)
        if schema and not create:
            made.db.require_schema()
        obj["runtime"] = made
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
