"""The command line: the same use cases as the web UI, for the office and for scripts.

Errors print one line (`Error: ...`) and exit non-zero; nothing is half-saved.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from trialship import __version__
from trialship.app import Runtime, bootstrap
from trialship.errors import TrialshipError, ValidationError
from trialship.registry import migrate
from trialship.registry.models import Trial
from trialship.services import audit, subject_import, subjects, timepoints, trials, users
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


def _runtime(ctx: click.Context) -> Runtime:
    obj = ctx.ensure_object(dict)
    if "runtime" not in obj:
        overrides = {"data_dir": obj["data"]} if obj.get("data") else None
        obj["runtime"] = bootstrap(overrides)
    runtime: Runtime = obj["runtime"]
    return runtime


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor.command_line(f"cli:{who}")


@contextmanager
def unit_of_work() -> Iterator[tuple[Runtime, Session]]:
    runtime = _runtime(click.get_current_context())
    with runtime.db.unit_of_work() as session:
        yield runtime, session


def _trial(session: Session, runtime: Runtime, protocol_id: str) -> Trial:
    return trials.trial_by_protocol(session, _actor(), protocol_id, runtime.today())


def trial_option(func: F) -> F:
    return click.option(
        "--trial",
        "protocol_id",
        required=True,
        metavar="PROTOCOL_ID",
        help="The trial, by its protocol ID.",
    )(func)


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def _password(env_var: str, prompt: str) -> str:
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


# -- set-up and serving -------------------------------------------------------------------


@main.command()
@click.option("--admin-email", help="Create this first administrator (if no user exists yet).")
@click.option("--admin-name", default="Administrator", show_default=True)
def init(admin_email: str | None, admin_name: str) -> None:
    """Create the data folder and its keys, migrate the database, add the first admin.

    The admin's password comes from TRIALSHIP_ADMIN_PASSWORD, or a prompt.
    """
    runtime = _runtime(click.get_current_context())
    migrate.upgrade(runtime.settings.effective_database_url)
    click.echo(f"Data folder {runtime.settings.data_dir.resolve()} is ready.")
    if not admin_email:
        return
    with runtime.db.unit_of_work() as session:
        if users.count_users(session):
            click.echo("Users exist already: no admin was added.")
            return
        password = _password("TRIALSHIP_ADMIN_PASSWORD", "Password for the first admin")
        user = users.create_user(
            session, _actor(), email=admin_email, password=password, name=admin_name, is_admin=True
        )
        click.echo(f"Admin {user.email} created.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-worker", is_flag=True, help="Do not run the job queue's worker inside.")
def serve(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Serve the web UI and the API with waitress (and run the job worker inside)."""
    from trialship.serving import serve as run_server

    runtime = _runtime(click.get_current_context())
    migrate.check(runtime.settings.effective_database_url)
    run_server(runtime, host=host, port=port, threads=threads, worker=not no_worker)


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def worker(workers: int) -> None:
    """Run the job queue's worker on its own (Redis-backed queues on many machines)."""
    from trialship.serving import run_worker

    run_worker(_runtime(click.get_current_context()), workers=workers)


@main.group()
def db() -> None:
    """Database schema: upgrade, check, downgrade."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION (default: the latest)."""
    migrate.upgrade(_runtime(click.get_current_context()).settings.effective_database_url, revision)
    click.echo("Database is up to date.")


@db.command("check")
def db_check() -> None:
    """Exit non-zero when the models and the migrations (or the database) differ."""
    migrate.check(_runtime(click.get_current_context()).settings.effective_database_url)
    click.echo("Models, migrations and database agree.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION (`base` empties the database)."""
    migrate.downgrade(
        _runtime(click.get_current_context()).settings.effective_database_url, revision
    )
    click.echo(f"Database downgraded to {revision}.")


# -- users and tokens ---------------------------------------------------------------------


@main.group()
def user() -> None:
    """Users: add, list, disable."""


@user.command("add")
@click.argument("email")
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="Give the user every right.")
def user_add(email: str, name: str, admin: bool) -> None:
    """Add a user. The password comes from TRIALSHIP_USER_PASSWORD, or a prompt."""
    with unit_of_work() as (_, session):
        password = _password("TRIALSHIP_USER_PASSWORD", f"Password for {email}")
        created = users.create_user(
            session, _actor(), email=email, password=password, name=name, is_admin=admin
        )
        click.echo(f"User {created.email} added{' (admin)' if admin else ''}.")


@user.command("list")
def user_list() -> None:
    """List the users."""
    with unit_of_work() as (_, session):
        _print_table(
            [
                {
                    "email": u.email,
                    "name": u.name,
                    "admin": "yes" if u.is_admin else "",
                    "active": "yes" if u.active else "no",
                    "roles": ", ".join(
                        f"{m.trial.protocol_id}:{m.role.value}" for m in u.memberships
                    ),
                }
                for u in users.list_users(session)
            ],
            ["email", "name", "admin", "active", "roles"],
        )


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: they can no longer log in or use their tokens."""
    with unit_of_work() as (_, session):
        target = users.user_by_email(session, email)
        users.update_user(session, _actor(), target, active=False)
        click.echo(f"User {target.email} disabled.")


@main.group()
def token() -> None:
    """API tokens for scripts: create, revoke."""


@token.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'nightly upload'.")
def token_create(email: str, name: str) -> None:
    """Create an API token for the user EMAIL and print it (once)."""
    with unit_of_work() as (_, session):
        owner = users.user_by_email(session, email)
        row, plain = users.create_token(session, _actor(), owner, name)
        click.echo(f"Token {row.id} for {owner.email} ({name}); it is shown only now:", err=True)
        click.echo(plain)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke the token TOKEN_ID."""
    with unit_of_work() as (_, session):
        users.revoke_token(session, _actor(), token_id)
        click.echo(f"Token {token_id} revoked.")


@token.command("list")
def token_list() -> None:
    """List tokens (never the tokens themselves)."""
    with unit_of_work() as (_, session):
        _print_table(
            [
                {
                    "id": t.id,
                    "user": t.user.email,
                    "name": t.name,
                    "prefix": t.prefix,
                    "last_used": t.last_used_at or "",
                    "revoked": t.revoked_at or "",
                }
                for t in users.list_tokens(session)
            ],
            ["id", "user", "name", "prefix", "last_used", "revoked"],
        )


# -- the registry -------------------------------------------------------------------------


@main.group()
def trial() -> None:
    """Trials: add, list, show."""


@trial.command("add")
@click.option("--protocol-id", required=True, help="(0012,0020) Clinical Trial Protocol ID.")
@click.option("--sponsor", "sponsor_name", required=True, help="(0012,0010) Sponsor Name.")
@click.option("--short-name", required=True)
@click.option("--protocol-name", default="", help="(0012,0021)")
@click.option("--ethics-committee", "ethics_committee_name", default="", help="(0012,0081)")
@click.option("--ethics-approval", "ethics_approval_number", default="", help="(0012,0082)")
@click.option(
    "--irb-expiry",
    default="",
    metavar="YYYY-MM-DD",
    help="The trial becomes read-only after this date.",
)
@click.option("--coordinating-center", default="", help="(0012,0060)")
def trial_add(**fields: str) -> None:
    """Register a trial."""
    with unit_of_work() as (_, session):
        created = trials.create_trial(session, _actor(), fields)
        click.echo(f"Trial {created.protocol_id} added (id {created.id}).")


@trial.command("list")
def trial_list() -> None:
    """List the trials."""
    with unit_of_work() as (_, session):
        _print_table(
            [
                {
                    "id": t.id,
                    "protocol_id": t.protocol_id,
                    "short_name": t.short_name,
                    "sponsor": t.sponsor_name,
                    "status": t.status.value,
                    "irb_expiry": t.irb_expiry or "",
                }
                for t in trials.list_trials(session, _actor())
            ],
            ["id", "protocol_id", "short_name", "sponsor", "status", "irb_expiry"],
        )


@trial.command("show")
@click.argument("protocol_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def trial_show(protocol_id: str, as_json: bool) -> None:
    """Show a trial, its sites, schedule and completeness."""
    from trialship.services.completeness import completeness

    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        matrix = completeness(session, found, runtime.today())
        info = {
            "protocol_id": found.protocol_id,
            "short_name": found.short_name,
            "sponsor_name": found.sponsor_name,
            "protocol_name": found.protocol_name,
            "status": found.status.value,
            "irb_expiry": found.irb_expiry.isoformat() if found.irb_expiry else None,
            "sites": [{"site_id": s.site_id, "name": s.name} for s in found.sites],
            "timepoints": [tp.timepoint_id for tp in matrix.timepoints],
            "subjects": len(matrix.rows),
            "completeness": {state.value: n for state, n in matrix.totals().items()},
        }
        if as_json:
            click.echo(json.dumps(info, indent=2))
            return
        info["sites"] = [f"{s.site_id} ({s.name})" if s.name else s.site_id for s in found.sites]
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            click.echo(f"{key.replace('_', ' ')}: {'' if value is None else value}")


@main.group()
def site() -> None:
    """Sites of a trial."""


@site.command("add")
@trial_option
@click.argument("site_id")
@click.option("--name", default="", help="(0012,0031) Clinical Trial Site Name.")
def site_add(protocol_id: str, site_id: str, name: str) -> None:
    """Add the site SITE_ID, (0012,0030), to a trial."""
    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        trials.add_site(
            session, _actor(), found, {"site_id": site_id, "name": name}, runtime.today()
        )
        click.echo(f"Site {site_id} added to {found.protocol_id}.")


@main.group()
def subject() -> None:
    """Subjects of a trial: add, import."""


@subject.command("add")
@trial_option
@click.argument("subject_id")
@click.option("--site", "site_id", default="", help="The subject's site ID.")
@click.option("--reading-id", default="", help="(0012,0042) Subject Reading ID.")
@click.option(
    "--status",
    type=click.Choice(["screening", "enrolled", "withdrawn"]),
    default="enrolled",
    show_default=True,
)
@click.option(
    "--consent/--no-consent",
    "consent_distribution",
    default=False,
    help="Consent for distribution (0012,0085).",
)
@click.option(
    "--baseline",
    "baseline_date",
    default="",
    metavar="YYYY-MM-DD",
    help="The baseline date the visit windows count from.",
)
@click.option(
    "--mrn",
    "identifiers",
    multiple=True,
    metavar="MRN[|ISSUER]",
    help="An original patient ID (stored encrypted); repeat for several.",
)
def subject_add(protocol_id: str, **fields: Any) -> None:
    """Add the subject SUBJECT_ID, (0012,0040), to a trial."""
    fields["identifiers"] = list(fields["identifiers"])
    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        added = subjects.add_subject(
            session, _actor(), runtime.vault, found, fields, runtime.today()
        )
        click.echo(f"Subject {added.subject_id} added to {found.protocol_id}.")


@subject.command("import")
@trial_option
@click.argument("csv_file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check every row; save nothing.")
def subject_import_cmd(protocol_id: str, csv_file: Any, dry_run: bool) -> None:
    """Import subjects from CSV_FILE: all rows, or none when any row is wrong.

    Columns: subject_id (required), site_id, reading_id, status, consent_distribution,
    baseline_date (YYYY-MM-DD), identifiers ("MRN|ISSUER; MRN2|ISSUER2").
    """
    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        result = subject_import.import_subjects(
            session,
            _actor(),
            runtime.vault,
            found,
            csv_file.read(),
            today=runtime.today(),
            commit=not dry_run,
            max_bytes=runtime.settings.csv_max_bytes,
            max_rows=runtime.settings.csv_max_rows,
        )
        for row in result.error_rows:
            click.echo(f"line {row.line}: {'; '.join(row.errors)}", err=True)
        if result.error_rows:
            raise ValidationError(
                f"{len(result.error_rows)} of {len(result.rows)} rows are wrong: nothing imported",
                field=csv_file.name,
            )
        verb = "would be imported (dry run)" if dry_run else "imported"
        click.echo(f"{len(result.rows)} subjects {verb} into {found.protocol_id}.")


@main.group()
def timepoint() -> None:
    """The time point schedule of a trial."""


@timepoint.command("add")
@trial_option
@click.argument("timepoint_id")
@click.option("--description", default="", help="(0012,0051) Time Point Description.")
@click.option(
    "--day", "day_offset", default=0, show_default=True, type=int, help="Nominal day from baseline."
)
@click.option(
    "--minus",
    "window_minus",
    default=0,
    show_default=True,
    type=int,
    help="Window: days allowed before the nominal day.",
)
@click.option(
    "--plus",
    "window_plus",
    default=0,
    show_default=True,
    type=int,
    help="Window: days allowed after the nominal day.",
)
@click.option("--order", default=None, type=int, help="Position in the schedule.")
@click.option(
    "--expect",
    "expected_exams",
    multiple=True,
    metavar="MODALITY[:PATTERN[:COUNT]]",
    help="An expected exam, e.g. 'CT:CHEST*:1'; repeat for several.",
)
def timepoint_add(protocol_id: str, **fields: Any) -> None:
    """Add the time point TIMEPOINT_ID, (0012,0050), to a trial's schedule."""
    fields["expected_exams"] = "; ".join(fields["expected_exams"])
    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        added = timepoints.add_timepoint(session, _actor(), found, fields, runtime.today())
        click.echo(f"Time point {added.timepoint_id} added to {found.protocol_id}.")


@timepoint.command("list")
@trial_option
def timepoint_list(protocol_id: str) -> None:
    """List a trial's schedule."""
    with unit_of_work() as (runtime, session):
        found = _trial(session, runtime, protocol_id)
        _print_table(
            [
                {
                    "order": tp.order,
                    "id": tp.timepoint_id,
                    "description": tp.description,
                    "day": tp.day_offset,
                    "window": f"-{tp.window_minus}/+{tp.window_plus}",
                    "expected": "; ".join(
                        f"{e.modality}:{e.description_pattern}:{e.count}" for e in tp.expected_exams
                    ),
                }
                for tp in timepoints.list_timepoints(session, found)
            ],
            ["order", "id", "description", "day", "window", "expected"],
        )


@main.command("audit")
@click.option("--trial", "protocol_id", default=None, metavar="PROTOCOL_ID")
@click.option("--user", "email", default=None)
@click.option("--action", default="", help="Action, or its prefix (e.g. 'subject.').")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def audit_cmd(protocol_id: str | None, email: str | None, action: str, limit: int) -> None:
    """Show the audit trail, newest first."""
    with unit_of_work() as (runtime, session):
        trial_id = _trial(session, runtime, protocol_id).id if protocol_id else None
        user_id = users.user_by_email(session, email).id if email else None
        events, total = audit.list_events(
            session,
            audit.AuditFilter(trial_id=trial_id, user_id=user_id, action=action, limit=limit),
        )
        _print_table(
            [
                {
                    "when": e.at.isoformat(sep=" ", timespec="seconds"),
                    "who": e.actor,
                    "action": e.action,
                    "object": f"{e.object_type} {e.object_id}".strip(),
                    "details": json.dumps(e.details, sort_keys=True),
                }
                for e in events
            ],
            ["when", "who", "action", "object", "details"],
        )
        if total > len(events):
            click.echo(f"({len(events)} of {total} shown)", err=True)
