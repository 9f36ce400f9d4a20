"""Exams: import files into a trial, list the exams and the quarantine, confirm a time point,
record a pixel review, read the key (trial admins)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from trialship.cli import main, print_or_write_receipt, print_table, trial_option
from trialship.cli.runtime import cli_actor, find_trial, unit_of_work
from trialship.jobs.tasks import apply_rules
from trialship.services import exam_reports, exams
from trialship.services.exam_import import FileOutcome, ImportSummary, Status, import_exams
from trialship.services.json_shapes import exam as exam_shape
from trialship.services.timepoints import timepoint_by_code
from trialship.signing import load_or_create_signing_key

EXIT_QUARANTINED = 3


@main.command("import")
# A mistyped path is a usage error before anything is recorded, not a quarantined "file".
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@trial_option
@click.option("--subject", "subject_id", default="", help="Assign every file to this subject ID.")
@click.option("--timepoint", "timepoint_id", default="", help="The time point ID (with --subject).")
def import_command(
    sources: tuple[Path, ...], protocol_id: str, subject_id: str, timepoint_id: str
) -> None:
    """Import DICOM files, folders and zips into a trial: de-identified, keyed, receipted.

    Exit 0 when every file was imported (or was already), 3 when some were quarantined.
    """
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        data_dir = runtime.settings.data_dir

        def run(progress: Any = None) -> ImportSummary:
            return import_exams(
                session,
                cli_actor(),
                runtime.vault,
                trial,
                list(sources),
                data_dir=data_dir,
                signing_key=load_or_create_signing_key(data_dir),
                today=runtime.today(),
                now=_now(),
                subject_id=subject_id,
                timepoint_id=timepoint_id,
                progress=progress,
            )

        summary = _with_progress(run)
        # Exams this import made ready go to the worker where an automation rule says so.
        automated = apply_rules(runtime)
    for outcome in summary.quarantined:
        click.echo(f"quarantined: {outcome.label}: {outcome.reason}", err=True)
    click.echo(f"Import into {protocol_id}: {summary.line()}.")
    if automated:
        click.echo(f"{automated} submission(s) queued by automation rules.")
    sys.exit(EXIT_QUARANTINED if summary.quarantined else 0)


def _now() -> dt.datetime:
    """Now, to the second: the time receipts carry."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _with_progress(run: Any) -> ImportSummary:
    if not sys.stderr.isatty():
        summary: ImportSummary = run()
        return summary
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("importing", total=None)

        def advance(_: FileOutcome, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = run(advance)
        return summary


@main.group()
def exam() -> None:
    """Imported exams: list, show, receipt, report, quarantine, timepoint, reviewed, key."""


@exam.command("list")
@trial_option
def exam_list(protocol_id: str) -> None:
    """List the trial's exams."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        print_table(
            [
                {
                    "id": e.id,
                    "subject": e.subject.subject_id,
                    "timepoint": (e.timepoint.timepoint_id if e.timepoint else "-")
                    + ("" if e.timepoint_confirmed else " (unconfirmed)"),
                    "date": e.study_date or "",
                    "modality": e.modality,
                    "files": e.file_count,
                    "state": e.state.value,
                    "pixel_review": "needed"
                    if e.needs_pixel_review and not e.pixel_reviewed_at
                    else "",
                }
                for e in exams.list_exams(session, trial)
            ],
            ["id", "subject", "timepoint", "date", "modality", "files", "state", "pixel_review"],
        )


@exam.command("show")
@trial_option
@click.argument("exam_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API's GET exam).")
def exam_show(protocol_id: str, exam_id: int, as_json: bool) -> None:
    """Show EXAM_ID: subject, time point, study, state, pixel review and its series."""
    # (the API's own shape: a script gets the same fields from either)
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = exams.get_exam(session, trial, exam_id)
        info = exam_shape(found, series=exams.exam_series(session, found))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    timepoint = info["timepoint_id"] or "-"
    review = "not needed"
    if info["needs_pixel_review"]:
        review = f"reviewed {info['pixel_reviewed_at']}" if info["pixel_reviewed_at"] else "needed"
    for label, value in (
        ("exam", info["id"]),
        ("subject", info["subject_id"]),
        ("time point", timepoint + ("" if info["timepoint_confirmed"] else " (unconfirmed)")),
        ("study date", info["study_date"] or ""),
        ("modality", info["modality"]),
        ("description", info["description"]),
        ("state", info["state"]),
        ("files", f"{info['file_count']} ({info['total_bytes']} bytes)"),
        ("pixel review", review),
        ("receipt", "yes (`trialship exam receipt`)" if info["has_receipt"] else "not yet"),
    ):
        click.echo(f"{label}: {value}")
    print_table(
        [
            {
                "series": s["series_number"] if s["series_number"] is not None else "",
                "modality": s["modality"],
                "description": s["description"],
                "instances": s["instances"],
            }
            for s in info["series"]
        ],
        ["series", "modality", "description", "instances"],
    )


@exam.command("receipt")
@trial_option
@click.argument("exam_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def exam_receipt(protocol_id: str, exam_id: int, out: Path | None) -> None:
    """Print (or write) EXAM_ID's signed receipt; check it with `trialship receipt verify`."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = exams.get_exam(session, trial, exam_id)
        document = exams.receipt(session, cli_actor(), found, runtime.today())
    print_or_write_receipt(document, out)


@exam.command("report")
@trial_option
@click.argument("exam_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API's GET report).")
def exam_report(protocol_id: str, exam_id: int, as_json: bool) -> None:
    """What de-identification did to each attribute of each file of EXAM_ID (by tag and
    sequence path; never a value). Files alike share a report: it is printed once."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = exams.get_exam(session, trial, exam_id)
        document = exam_reports.attribute_reports(session, cli_actor(), found, runtime.today())
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    for index, entries in enumerate(document["reports"]):
        files = [f["path"] for f in document["files"] if f["report"] == index]
        more = " ..." if len(files) > 1 else ""
        click.echo(f"report {index + 1}, for {len(files)} file(s): {files[0]}{more}")
        print_table(entries, ["tag", "path", "action", "detail"])
    missing = [f["path"] for f in document["files"] if f["report"] is None]
    if missing:
        click.echo(f"{len(missing)} file(s) imported before reports were kept: none for them")


@exam.command("quarantine")
@trial_option
def exam_quarantine(protocol_id: str) -> None:
    """List the files imports refused, newest first, with their reasons (which file: its job,
    its place among the job's inputs (for a zip, the entry as `zipinfo` lists them) and the
    start of its SHA-256, as `sha256sum` prints it)."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        print_table(
            [
                {
                    "id": f.id,
                    "when": f.created_at.strftime("%Y-%m-%d %H:%M"),
                    "job": f.job_id or "",
                    "where": exams.position(f),
                    "bytes": f.size,
                    "sha256": (exams.content_sha256(f) or "-")[:16],
                    "kept": "yes" if f.stored_path else "no",
                    "reason": f.reason,
                }
                for f in exams.list_quarantine(session, trial)
            ],
            ["id", "when", "job", "where", "bytes", "sha256", "kept", "reason"],
        )


@exam.command("timepoint")
@trial_option
@click.argument("exam_id", type=int)
@click.argument("timepoint_id")
def exam_timepoint(protocol_id: str, exam_id: int, timepoint_id: str) -> None:
    """Set and confirm EXAM_ID's time point (its files are de-identified again if it changes)."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = exams.get_exam(session, trial, exam_id)
        data_dir = runtime.settings.data_dir
        exams.confirm_timepoint(
            session,
            cli_actor(),
            runtime.vault,
            found,
            timepoint_by_code(session, trial, timepoint_id),
            today=runtime.today(),
            data_dir=data_dir,
            signing_key=load_or_create_signing_key(data_dir),
            now=_now(),
        )
        click.echo(f"Exam {found.id}: time point {timepoint_id} confirmed.")


@exam.command("reviewed")
@trial_option
@click.argument("exam_id", type=int)
def exam_reviewed(protocol_id: str, exam_id: int) -> None:
    """Record that EXAM_ID's pixels were reviewed for burned-in text."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = exams.mark_pixels_reviewed(
            session, cli_actor(), exams.get_exam(session, trial, exam_id), runtime.today()
        )
        click.echo(f"Exam {found.id}: pixels marked as reviewed.")


@exam.command("key")
@trial_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet).")
def exam_key(protocol_id: str, as_csv: bool) -> None:
    """Print the re-identification key of the trial (audited)."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        rows = exams.read_key(
            session, cli_actor(), runtime.vault, trial, runtime.today(), export=as_csv
        )
        # The read is recorded before anything is printed: output cut short (`| head`, a
        # closed pipe) must not roll the audit event back with it.
        session.commit()
        if as_csv:
            click.echo(exams.key_csv(rows), nl=False)
        else:
            print_table([row.as_dict() for row in rows], exams.KEY_COLUMNS)


__all__ = ["Status", "exam", "import_command"]
