"""The registry: trials, sites, subjects, time points, the audit trail."""

from __future__ import annotations

import json
from typing import Any

import click

from trialship.cli import main, print_table, trial_option
from trialship.cli.runtime import cli_actor, find_trial, unit_of_work
from trialship.errors import ValidationError
from trialship.services import (
    audit,
    subject_import,
    subjects,
    timepoints,
    trial_profile,
    trials,
    users,
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
        created = trials.create_trial(session, cli_actor(), fields)
        click.echo(f"Trial {created.protocol_id} added (id {created.id}).")


@trial.command("list")
def trial_list() -> None:
    """List the trials."""
    with unit_of_work() as (_, session):
        print_table(
            [
                {
                    "id": t.id,
                    "protocol_id": t.protocol_id,
                    "short_name": t.short_name,
                    "sponsor": t.sponsor_name,
                    "status": t.status.value,
                    "irb_expiry": t.irb_expiry or "",
                }
                for t in trials.list_trials(session, cli_actor())
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
        found = find_trial(session, runtime, protocol_id)
        matrix = completeness(session, found, runtime.today())
        info: dict[str, Any] = {
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
        found = find_trial(session, runtime, protocol_id)
        trials.add_site(
            session, cli_actor(), found, {"site_id": site_id, "name": name}, runtime.today()
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
        found = find_trial(session, runtime, protocol_id)
        added = subjects.add_subject(
            session, cli_actor(), runtime.vault, found, fields, runtime.today()
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
        found = find_trial(session, runtime, protocol_id)
        result = subject_import.import_subjects(
            session,
            cli_actor(),
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
        found = find_trial(session, runtime, protocol_id)
        added = timepoints.add_timepoint(session, cli_actor(), found, fields, runtime.today())
        click.echo(f"Time point {added.timepoint_id} added to {found.protocol_id}.")


@timepoint.command("list")
@trial_option
def timepoint_list(protocol_id: str) -> None:
    """List a trial's schedule."""
    with unit_of_work() as (runtime, session):
        found = find_trial(session, runtime, protocol_id)
        print_table(
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
        trial_id = find_trial(session, runtime, protocol_id).id if protocol_id else None
        user_id = users.user_by_email(session, email).id if email else None
        events, total = audit.list_events(
            session,
            audit.AuditFilter(trial_id=trial_id, user_id=user_id, action=action, limit=limit),
        )
        print_table(
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


@trial.group("profile")
def trial_profile_group() -> None:
    """The trial's de-identification profile (TOML, as `trialship deid --profile` reads)."""


@trial_profile_group.command("export")
@click.argument("protocol_id")
@click.option(
    "--include-secret",
    is_flag=True,
    help="Include the trial's UID secret (audited): needed to de-identify elsewhere "
    "with the same UIDs and date shifts.",
)
def trial_profile_export(protocol_id: str, include_secret: bool) -> None:
    """Print the trial's profile as TOML."""
    with unit_of_work() as (runtime, session):
        found = find_trial(session, runtime, protocol_id)
        click.echo(
            trial_profile.export_profile(
                session,
                cli_actor(),
                runtime.vault,
                found,
                include_secret=include_secret,
                today=runtime.today(),
            ),
            nl=False,
        )


@trial_profile_group.command("import")
@click.argument("protocol_id")
@click.argument("profile_file", type=click.File("r", encoding="utf-8"))
def trial_profile_import(protocol_id: str, profile_file: Any) -> None:
    """Adopt a standalone PROFILE_FILE: its [deid] settings, and its secret if it has one."""
    with unit_of_work() as (runtime, session):
        found = find_trial(session, runtime, protocol_id)
        trial_profile.import_profile(
            session, cli_actor(), runtime.vault, found, profile_file.read(), runtime.today()
        )
        click.echo(f"Profile of {found.protocol_id} replaced from {profile_file.name}.")
