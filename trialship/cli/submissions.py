"""`trialship submit`, `trialship submission list|show|receipt`, `trialship rule ...` and
`trialship jobs list|show|retry|cancel`: deliveries from the registry to a trial's
destinations, and the jobs of every kind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    DownloadColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from sqlalchemy.orm import Session

from trialship.app import Runtime
from trialship.cli import main, print_or_write_receipt, print_table, progress_bar, trial_option
from trialship.cli.runtime import cli_actor, find_trial, unit_of_work
from trialship.errors import ValidationError
from trialship.jobs.tasks import enqueue_job, enqueue_submission
from trialship.registry.models import Job
from trialship.registry.submissions import AutomationRule, Submission, SubmissionState
from trialship.services import automation, job_control, submissions
from trialship.services.destinations import destination_by_name
from trialship.services.import_jobs import get_job
from trialship.services.submission_run import run_submission
from trialship.services.timepoints import timepoint_by_code
from trialship.signing import load_or_create_signing_key

EXIT_FAILED = 1


@main.command("submit")
@trial_option
@click.option("--destination", "destination_name", required=True, help="The destination's name.")
@click.option("--exam", "exam_id", type=int, default=None, help="One exam (its id).")
@click.option("--timepoint", default="", help="Every exam of this time point (its ID).")
@click.option("--subject", default="", help="Every exam of this subject (its ID).")
@click.option(
    "--disc-set", "disc_set_id", type=int, default=None, help="A disc set's exams or images."
)
@click.option(
    "--queue",
    "queued",
    is_flag=True,
    help="Leave the sending to the worker (trialship serve or worker) instead of here.",
)
def submit(
    protocol_id: str,
    destination_name: str,
    exam_id: int | None,
    timepoint: str,
    subject: str,
    disc_set_id: int | None,
    queued: bool,
) -> None:
    """Send exams of the trial to one of its destinations, with a progress bar.

    Give one of --exam, --timepoint, --subject or --disc-set. Only ready exams are sent
    (de-identified, time point confirmed, pixel review done). A re-run after a failure or a
    kill skips every file the destination confirmed. Exit 0 when every file is confirmed.
    """
    given = [
        (scope, value)
        for scope, value in (
            ("exam", "" if exam_id is None else str(exam_id)),
            ("timepoint", timepoint),
            ("subject", subject),
            ("disc_set", "" if disc_set_id is None else str(disc_set_id)),
        )
        if value
    ]
    if len(given) != 1:
        raise ValidationError("give one of --exam, --timepoint, --subject or --disc-set")
    scope, value = given[0]
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        dest = destination_by_name(session, trial, destination_name)
        submission = submissions.create_submission(
            session, cli_actor(), trial, dest, scope=scope, value=value, today=runtime.today()
        )
        session.commit()
        click.echo(
            f"Submission {submission.id}: {submission.scope_label} to {dest.name} "
            f"(job {submission.job_id})"
        )
        if queued:
            enqueue_submission(runtime, submission.id)
            return
        data_dir = runtime.settings.data_dir
        console = Console(stderr=True)
        with progress_bar(
            console, DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()
        ) as bar:
            task = bar.add_task("sending", total=submission.bytes_total or None)

            def show(row: Submission) -> None:
                bar.update(
                    task,
                    completed=row.bytes_done,
                    total=row.bytes_total or None,
                    description=f"{row.files_done}/{row.files_total} files",
                )

            result = run_submission(
                session,
                runtime.vault,
                submission.id,
                data_dir=data_dir,
                signing_key=load_or_create_signing_key(data_dir),
                progress=show,
            )
        _report(result or submission)


def _report(submission: Submission) -> None:
    line = f"Submission {submission.id}: {submission.state.value}: {submission.message}"
    if submission.state == SubmissionState.DONE:
        click.echo(line)
        return
    if submission.state == SubmissionState.QUEUED:
        line += " (the worker retries it; `trialship jobs retry` to try now)"
    click.echo(line, err=True)
    sys.exit(EXIT_FAILED)


@main.group("submission")
def submission_group() -> None:
    """Submissions of a trial: list, show, receipt."""


@submission_group.command("list")
@trial_option
@click.option("--state", default="", help="Only submissions in this state.")
def submission_list(protocol_id: str, state: str) -> None:
    """What went where and when, what failed and why, what is waiting."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        print_table(
            [
                {
                    "id": s.id,
                    "scope": s.scope_label,
                    "destination": s.destination.name,
                    "state": s.state.value,
                    "files": f"{s.files_done}/{s.files_total}",
                    "MB": f"{s.bytes_done / 1e6:.1f}/{s.bytes_total / 1e6:.1f}",
                    "by": s.trigger,
                    "created": f"{s.created_at:%Y-%m-%d %H:%M}",
                    "message": s.message[:80],
                }
                for s in submissions.list_submissions(session, trial, state=state)
            ],
            ["id", "scope", "destination", "state", "files", "MB", "by", "created", "message"],
        )


@submission_group.command("show")
@trial_option
@click.argument("submission_id", type=int)
def submission_show(protocol_id: str, submission_id: int) -> None:
    """One submission: its progress and the files that failed."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = submissions.get_submission(session, trial, submission_id)
        progress = submissions.progress_of(found)
        click.echo(f"submission {found.id}: {found.scope_label} to {found.destination.name}")
        click.echo(f"state: {found.state.value}  attempts: {found.attempts}  by: {found.trigger}")
        click.echo(
            f"files: {progress.files_done}/{progress.files_total}  "
            f"bytes: {progress.bytes_done}/{progress.bytes_total} ({progress.percent:.1f} %)"
        )
        if found.message:
            click.echo(f"message: {found.message}")
        for row in submissions.failed_files(session, found):
            click.echo(f"failed: {row.group}/{row.remote}: {row.detail.get('reason', '')}")


@submission_group.command("receipt")
@trial_option
@click.argument("submission_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def submission_receipt(protocol_id: str, submission_id: int, out: Path | None) -> None:
    """Print (or write) the signed receipt; check it with `trialship receipt verify`."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        found = submissions.get_submission(session, trial, submission_id)
        document = submissions.receipt_of(session, cli_actor(), found, runtime.today())
    print_or_write_receipt(document, out)


@main.group("rule")
def rule_group() -> None:
    """Automation: submit ready exams to a destination with no human step."""


@rule_group.command("add")
@trial_option
@click.option("--destination", "destination_name", required=True, help="The destination's name.")
@click.option("--timepoint", default="", help="Only exams of this time point (default: any).")
@click.option(
    "--daily-at",
    default="",
    metavar="HH:MM",
    help="Send once a day at this time (office time) instead of as soon as each exam is ready.",
)
def rule_add(protocol_id: str, destination_name: str, timepoint: str, daily_at: str) -> None:
    """Add a rule: each exam (of the time point) is sent when it is ready, or daily."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        dest = destination_by_name(session, trial, destination_name)
        tp = timepoint_by_code(session, trial, timepoint) if timepoint else None
        rule = automation.add_rule(
            session,
            cli_actor(),
            trial,
            dest,
            timepoint_pk=tp.id if tp else None,
            mode="daily" if daily_at else "on_ready",
            daily_at=daily_at,
            today=runtime.today(),
        )
        session.commit()
        click.echo(f"Rule {rule.id}: {_rule_text(rule)}")


def _rule_text(rule: AutomationRule) -> str:
    what = f"time point {rule.timepoint.timepoint_id}" if rule.timepoint else "every time point"
    when = f"daily at {rule.daily_at}" if rule.daily_at else "when ready"
    return f"exams of {what} go to {rule.destination.name} {when}"


@rule_group.command("list")
@trial_option
def rule_list(protocol_id: str) -> None:
    """The trial's rules."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        print_table(
            [
                {
                    "id": r.id,
                    "rule": _rule_text(r),
                    "enabled": "yes" if r.enabled else "no",
                    "by": r.created_by,
                }
                for r in automation.list_rules(session, trial)
            ],
            ["id", "rule", "enabled", "by"],
        )


@rule_group.command("enable")
@trial_option
@click.argument("rule_id", type=int)
def rule_enable(protocol_id: str, rule_id: int) -> None:
    """Switch a rule on."""
    _set_rule(protocol_id, rule_id, True)


@rule_group.command("disable")
@trial_option
@click.argument("rule_id", type=int)
def rule_disable(protocol_id: str, rule_id: int) -> None:
    """Switch a rule off (it is kept)."""
    _set_rule(protocol_id, rule_id, False)


def _set_rule(protocol_id: str, rule_id: int, enabled: bool) -> None:
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        rule = automation.get_rule(session, trial, rule_id)
        automation.set_rule_enabled(session, cli_actor(), rule, enabled, runtime.today())
        click.echo(f"Rule {rule.id} {'enabled' if enabled else 'disabled'}.")


@rule_group.command("remove")
@trial_option
@click.argument("rule_id", type=int)
def rule_remove(protocol_id: str, rule_id: int) -> None:
    """Delete a rule."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        rule = automation.get_rule(session, trial, rule_id)
        automation.delete_rule(session, cli_actor(), rule, runtime.today())
        click.echo(f"Rule {rule_id} removed.")


@main.group("jobs")
def jobs_group() -> None:
    """Jobs of every kind (imports, disc builds, submissions): list, show, retry, cancel."""


def _job_row(job: Job) -> dict[str, object]:
    return {
        "id": job.id,
        "kind": job.kind,
        "target": job.target,
        "state": job.state.value,
        "progress": f"{job.done}/{job.total}" if job.total else "",
        "created": f"{job.created_at:%Y-%m-%d %H:%M}",
        "message": job.message[:80],
    }


@jobs_group.command("list")
@click.option("--trial", "protocol_id", default="", help="Only this trial's jobs.")
@click.option("--state", default="", help="queued, running, done, failed or cancelled.")
def jobs_list(protocol_id: str, state: str) -> None:
    """The newest jobs."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id) if protocol_id else None
        try:
            rows = job_control.list_jobs(session, cli_actor(), trial=trial, state=state)
        except ValueError:
            raise ValidationError(f"unknown state {state!r}", field="state") from None
        print_table(
            [_job_row(j) for j in rows],
            ["id", "kind", "target", "state", "progress", "created", "message"],
        )


def _job(session: Session, runtime: Runtime, job_id: int) -> Job:
    return get_job(session, cli_actor(), job_id, runtime.today())


@jobs_group.command("show")
@click.argument("job_id", type=int)
def jobs_show(job_id: int) -> None:
    """One job, as JSON."""
    with unit_of_work() as (runtime, session):
        job = _job(session, runtime, job_id)
        row = _job_row(job)
        row.update(
            started=job.started_at.isoformat() if job.started_at else None,
            finished=job.finished_at.isoformat() if job.finished_at else None,
            message=job.message,
        )
        found = submissions.submission_by_job(session, job)
        if found is not None:
            row["submission"] = {"id": found.id, **submissions.progress_of(found).as_dict()}
        click.echo(json.dumps(row, indent=2, default=str))


@jobs_group.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Queue a failed or cancelled job again (for the worker); it resumes where it stopped."""
    with unit_of_work() as (runtime, session):
        job = _job(session, runtime, job_id)
        job_control.retry_job(session, cli_actor(), job, runtime.today())
        session.commit()
        enqueue_job(runtime, job)
        click.echo(f"Job {job.id} queued again.")


@jobs_group.command("cancel")
@click.argument("job_id", type=int)
def jobs_cancel(job_id: int) -> None:
    """Cancel a queued job, or a running submission (it stops at its next file)."""
    with unit_of_work() as (runtime, session):
        job = _job(session, runtime, job_id)
        job_control.cancel_job(session, cli_actor(), job, runtime.today())
        click.echo(f"Job {job.id}: cancel requested.")
