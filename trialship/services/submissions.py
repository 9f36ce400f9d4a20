"""Submissions: send exams (or a disc set's images) to a destination, as a job.

`create_submission` records what to send and its queued job; the worker runs it
(`submission_run.run_submission`). Who may submit: the media role (the people who make discs
make deliveries too), trial admins and admins; everyone who can read the trial sees them.
An exam is sent only when it is ready: de-identified (its files passed the leak check),
time point confirmed, pixel review done when it was flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from trialship.errors import Conflict, NotFound, ValidationError
from trialship.registry.delivery import Destination, DestinationKind
from trialship.registry.discs import DiscSet, DiscSetState
from trialship.registry.models import Exam, Job, JobState, Trial, utcnow
from trialship.registry.submissions import (
    ACTIVE_STATES,
    FileState,
    Submission,
    SubmissionFile,
    SubmissionState,
)
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.disc_sets import blocked_reason, candidate_exams
from trialship.services.fields import get_in_trial
from trialship.services.jobs import create_job

KIND = "submission"
SCOPES = ("exam", "timepoint", "subject", "disc_set")


def exam_blocked(exam: Exam) -> str | None:
    """Why an exam cannot be submitted, or None (the same readiness as for a disc, plus a
    confirmed time point: the time point is written into the files)."""
    reason = blocked_reason(exam)
    if reason is None and not exam.timepoint_confirmed:
        return "time point not confirmed"
    return reason


def _check_destination(dest: Destination) -> None:
    if not dest.enabled:
        raise Conflict(f"destination {dest.name} is disabled")
    if dest.kind == DestinationKind.SFTP and not dest.host_key_fingerprint:
        raise Conflict(
            f"destination {dest.name}: its host key is not pinned yet: test the connection "
            "and confirm the fingerprint first"
        )


def _number(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError("is given by its number", field=field) from None


def _exams_of_scope(
    session: Session, trial: Trial, scope: str, value: str
) -> tuple[list[Exam], str, DiscSet | None]:
    if scope == "exam":
        exam = get_in_trial(session, Exam, trial, _number(value, "exam"), "exam")
        return [exam], f"exam {exam.id}", None
    if scope == "subject":
        exams = candidate_exams(session, trial, subject=value)
        if not exams:
            raise NotFound(f"subject {value!r} has no exams in {trial.protocol_id}")
        return exams, f"subject {value}", None
    if scope == "timepoint":
        exams = candidate_exams(session, trial, timepoint=value)
        if not exams:
            raise NotFound(f"time point {value!r} has no exams in {trial.protocol_id}")
        return exams, f"time point {value}", None
    if scope == "disc_set":
        disc_set = get_in_trial(session, DiscSet, trial, _number(value, "disc_set"), "disc set")
        if disc_set.state != DiscSetState.READY:
            raise Conflict(f"disc set {disc_set.id} is {disc_set.state.value}, not ready")
        return list(disc_set.exams), f"disc set {disc_set.id}", disc_set
    raise ValidationError(f"choose one of {', '.join(SCOPES)}", field="scope")


def create_submission(
    session: Session,
    actor: Actor,
    trial: Trial,
    destination: Destination,
    *,
    scope: str,
    value: str,
    today: dt.date,
    trigger: str = "",
) -> Submission:
    """Record a queued submission and its job (the caller enqueues it after commit).

    Every exam of the scope must be ready; the package form is the destination's (DICOM and
    DICOMweb destinations receive the instances; an ISO form needs a disc set).
    """
    require(session, actor, trial, Capability.MEDIA, today)
    if destination.trial_id != trial.id:
        raise NotFound(f"no destination {destination.id}")
    _check_destination(destination)
    exams, label, disc_set = _exams_of_scope(session, trial, scope, value)
    blocked = [(e, r) for e in exams if (r := exam_blocked(e)) is not None]
    if blocked:
        listed = "; ".join(f"exam {e.id}: {reason}" for e, reason in blocked[:5])
        raise Conflict(f"not ready to send: {listed}")
    form = destination.package_form if destination.kind == DestinationKind.SFTP else "dicom"
    if form == "iso" and disc_set is None:
        raise ValidationError(
            f"destination {destination.name} takes ISO images: submit a disc set", field="scope"
        )
    submission = Submission(
        trial_id=trial.id,
        destination_pk=destination.id,
        scope=scope,
        scope_label=label,
        trigger=trigger or actor.label,
        user_id=actor.user_id,
        package_form=form,
        exam_pks=[e.id for e in exams],
        disc_set_pk=disc_set.id if disc_set else None,
        files_total=sum(e.file_count for e in exams),
        bytes_total=sum(e.total_bytes for e in exams),
    )
    session.add(submission)
    session.flush()
    job = create_job(
        session,
        kind=KIND,
        target=f"submission:{submission.id}",
        trial_id=trial.id,
        user_id=actor.user_id,
    )
    job.total = submission.files_total
    submission.job_id = job.id
    audit.record(
        session,
        actor,
        "submission.create",
        object_type="submission",
        object_id=submission.id,
        trial_id=trial.id,
        details={"destination": destination.name, "scope": label, "exams": len(exams)},
    )
    return submission


def list_submissions(
    session: Session, trial: Trial, *, state: str = "", limit: int = 200
) -> list[Submission]:
    query = (
        select(Submission)
        .where(Submission.trial_id == trial.id)
        .options(selectinload(Submission.destination))
        .order_by(Submission.id.desc())
        .limit(limit)
    )
    if state:
        try:
            query = query.where(Submission.state == SubmissionState(state))
        except ValueError:
            raise ValidationError(
                f"choose one of {', '.join(s.value for s in SubmissionState)}", field="state"
            ) from None
    return list(session.scalars(query))


def get_submission(session: Session, trial: Trial, submission_pk: int) -> Submission:
    return get_in_trial(session, Submission, trial, submission_pk, "submission")


def submission_by_job(session: Session, job: Job) -> Submission | None:
    return session.scalar(select(Submission).where(Submission.job_id == job.id))


def file_counts(session: Session, submission: Submission) -> dict[str, int]:
    """How many files are pending, sent and failed (from the per-file rows)."""
    rows = session.execute(
        select(SubmissionFile.state, func.count())
        .where(SubmissionFile.submission_pk == submission.id)
        .group_by(SubmissionFile.state)
    )
    counts = {state.value: 0 for state in FileState}
    for state, count in rows:
        counts[state.value] = count
    return counts


def failed_files(session: Session, submission: Submission, limit: int = 50) -> list[SubmissionFile]:
    return list(
        session.scalars(
            select(SubmissionFile)
            .where(
                SubmissionFile.submission_pk == submission.id,
                SubmissionFile.state == FileState.FAILED,
            )
            .order_by(SubmissionFile.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Progress:
    """What a face shows of a running submission."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    rate: float | None  # bytes per second in the current attempt
    seconds_left: float | None

    @property
    def percent(self) -> float:
        if self.bytes_total:
            return min(100.0, 100.0 * self.bytes_done / self.bytes_total)
        return 100.0 if self.files_total and self.files_done >= self.files_total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_done": self.files_done,
            "files_total": self.files_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "bytes_per_second": round(self.rate) if self.rate is not None else None,
            "seconds_left": round(self.seconds_left) if self.seconds_left is not None else None,
            "percent": round(self.percent, 1),
        }


def progress_of(submission: Submission, now: dt.datetime | None = None) -> Progress:
    rate = left = None
    started = submission.attempt_started_at
    if submission.state == SubmissionState.RUNNING and started is not None:
        elapsed = ((now or utcnow()) - started).total_seconds()
        if elapsed > 0 and submission.attempt_bytes > 0:
            rate = submission.attempt_bytes / elapsed
            left = max(0.0, submission.bytes_total - submission.bytes_done) / rate
    return Progress(
        submission.files_done,
        submission.files_total,
        submission.bytes_done,
        submission.bytes_total,
        rate,
        left,
    )


def cancel_submission(
    session: Session, actor: Actor, submission: Submission, today: dt.date
) -> Submission:
    """Stop a queued or running submission. A running one stops at its next file or chunk;
    what the destination already confirmed stays confirmed."""
    require(session, actor, submission.trial, Capability.MEDIA, today)
    if submission.state not in ACTIVE_STATES:
        raise Conflict(f"submission {submission.id} is {submission.state.value}: nothing to cancel")
    submission.cancel_requested = True
    if submission.state == SubmissionState.QUEUED:
        end_submission(submission, SubmissionState.CANCELLED, "cancelled before it started")
    audit.record(
        session,
        actor,
        "submission.cancel",
        object_type="submission",
        object_id=submission.id,
        trial_id=submission.trial_id,
    )
    return submission


def retry_submission(
    session: Session, actor: Actor, submission: Submission, today: dt.date
) -> Submission:
    """Queue a failed or cancelled submission again: confirmed files are not sent again.
    The caller enqueues its job after commit."""
    require(session, actor, submission.trial, Capability.MEDIA, today)
    if submission.state in ACTIVE_STATES or submission.state == SubmissionState.DONE:
        raise Conflict(f"submission {submission.id} is {submission.state.value}: nothing to retry")
    _check_destination(submission.destination)
    submission.state = SubmissionState.QUEUED
    submission.cancel_requested = False
    submission.attempts, submission.not_before = 0, None
    submission.finished_at, submission.message = None, ""
    if submission.job is not None:
        job = submission.job
        job.state, job.finished_at, job.message = JobState.QUEUED, None, ""
    session.execute(
        update(SubmissionFile)
        .where(
            SubmissionFile.submission_pk == submission.id,
            SubmissionFile.state == FileState.FAILED,
        )
        .values(state=FileState.PENDING)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor,
        "submission.retry",
        object_type="submission",
        object_id=submission.id,
        trial_id=submission.trial_id,
    )
    return submission


def end_submission(submission: Submission, state: SubmissionState, message: str) -> None:
    submission.state, submission.message = state, message
    submission.finished_at, submission.runner = utcnow(), ""
    job = submission.job
    if job is not None:
        job.state = {
            SubmissionState.DONE: JobState.DONE,
            SubmissionState.FAILED: JobState.FAILED,
            SubmissionState.CANCELLED: JobState.CANCELLED,
        }[state]
        job.finished_at, job.message = submission.finished_at, message
        job.done = submission.files_done


def receipt_of(
    session: Session, actor: Actor, submission: Submission, today: dt.date
) -> dict[str, Any]:
    require(session, actor, submission.trial, Capability.READ, today)
    if not submission.receipt:
        raise NotFound(f"submission {submission.id} has no receipt yet ({submission.state.value})")
    return submission.receipt


def deliveries_by_exam(session: Session, trial: Trial) -> dict[int, list[tuple[str, str]]]:
    """For each exam of the trial: (destination name, state) of its latest submission to each
    destination, for the exams list ("sent to sponsor", "failed at pacs")."""
    latest: dict[tuple[int, str], str] = {}
    rows = session.execute(
        select(Submission.exam_pks, Destination.name, Submission.state)
        .join(Destination, Destination.id == Submission.destination_pk)
        .where(Submission.trial_id == trial.id)
        .order_by(Submission.id)
    )
    for exam_pks, name, state in rows:
        for pk in exam_pks:
            latest[(pk, name)] = state.value
    found: dict[int, list[tuple[str, str]]] = {}
    for (pk, name), last in sorted(latest.items()):
        found.setdefault(pk, []).append((name, last))
    return found


def already_submitted(
    session: Session, exam_pks: Sequence[int], destination: Destination
) -> set[int]:
    """Exams already in a submission to `destination` that is done or still under way."""
    rows = session.scalars(
        select(Submission).where(
            Submission.destination_pk == destination.id,
            Submission.state.in_([*ACTIVE_STATES, SubmissionState.DONE]),
        )
    )
    wanted = set(exam_pks)
    return {pk for sub in rows for pk in sub.exam_pks if pk in wanted}


__all__ = [
    "KIND",
    "SCOPES",
    "Progress",
    "already_submitted",
    "cancel_submission",
    "create_submission",
    "deliveries_by_exam",
    "end_submission",
    "exam_blocked",
    "failed_files",
    "file_counts",
    "get_submission",
    "list_submissions",
    "progress_of",
    "receipt_of",
    "retry_submission",
    "submission_by_job",
]
