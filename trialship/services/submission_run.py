"""Running a submission: claim it, send each group, record every file, sign the receipt.

Exactly-once, as far as the destination can tell: each group has a journal file under
`<data>/submissions/<trial>/<id>/` that the sender appends to as the destination confirms each
file (fsync'd), and the per-file rows follow the journal. A killed worker leaves the
submission `running` with an old heartbeat; `resume_stalled` queues it again and the next run
skips every confirmed file. Only one worker runs a submission at a time: `claim` is one
conditional UPDATE.

The sender runs in a thread so that this thread can, every half second, write progress and
the heartbeat to the database and see a cancel request (the sender's progress callback then
raises `Cancelled` at its next chunk or file). Transient errors queue the submission again
after a back-off (`RETRY_DELAYS`); permanent ones (authentication, host key, association
rejected, identified data) fail it at once with the message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from trialship import __version__
from trialship.crypto import Vault
from trialship.deid.receipt import build_receipt, sign_receipt
from trialship.errors import TrialshipError
from trialship.registry.delivery import Destination
from trialship.registry.models import JobState, utcnow
from trialship.registry.submissions import FileState, Submission, SubmissionFile, SubmissionState
from trialship.services.destinations import transfer_destination
from trialship.services.submission_files import guarded_package, plan_files, submission_folder
from trialship.services.submissions import end_submission
from trialship.transfer import Journal, Package, TransferError, TransferReceipt
from trialship.transfer import send as transfer_send

Sender = Callable[..., TransferReceipt]
Watcher = Callable[[Submission], None]  # called with the submission every poll (a CLI bar)
RETRY_DELAYS = (30, 120, 600, 1800, 3600)  # seconds before attempt 2, 3, ...
STALE_AFTER = dt.timedelta(minutes=2)
_POLL = 0.5


class Cancelled(TrialshipError):
    """Raised inside the sender when a person cancelled the submission."""


def runner_id() -> str:
    """Who runs a submission: host, process and a nonce, so that a worker on this host can tell
    at once that the process which held a submission is gone (`_dead_here`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(runner: str) -> bool:
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stalled(session: Session, now: dt.datetime) -> Any:
    """Running submissions whose worker died: an old heartbeat, or a process of this host
    that no longer exists."""
    running = session.execute(
        select(Submission.id, Submission.runner, Submission.heartbeat_at).where(
            Submission.state == SubmissionState.RUNNING
        )
    ).all()
    stale = now - STALE_AFTER
    return [
        (pk, runner)
        for pk, runner, beat in running
        if (beat is not None and beat < stale) or _dead_here(runner or "")
    ]


def claim(session: Session, submission_pk: int, runner: str, now: dt.datetime) -> bool:
    """Take the submission for this run: it must be queued (and due), or running with a dead
    worker. One UPDATE, so two workers never both win."""
    dead = [held for pk, held in _stalled(session, now) if pk == submission_pk]
    stale = now - STALE_AFTER
    result = session.execute(
        update(Submission)
        .where(
            Submission.id == submission_pk,
            Submission.cancel_requested.is_(False),
            or_(
                and_(
                    Submission.state == SubmissionState.QUEUED,
                    or_(Submission.not_before.is_(None), Submission.not_before <= now),
                ),
                and_(
                    Submission.state == SubmissionState.RUNNING,
                    or_(Submission.heartbeat_at < stale, Submission.runner.in_(dead)),
                ),
            ),
        )
        .values(state=SubmissionState.RUNNING, runner=runner, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


class _Counters:
    """Progress from the sender's threads, read by the job thread. The senders report every
    chunk (SFTP) or file (DICOM) here, so this is also where a cancel request is raised and
    the destination's bandwidth limit is kept (by sleeping until the average is under it)."""

    def __init__(self, cancel: threading.Event, *, rate_limit: int = 0, resumed: int = 0) -> None:
        self.lock = threading.Lock()
        self.files = 0
        self.bytes = 0
        self.cancel = cancel
        self.rate_limit = rate_limit  # bytes per second, 0: none
        self.resumed = resumed  # bytes the journal had confirmed: reported, not sent
        self.started = time.monotonic()

    def __call__(self, files: int, nbytes: int) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")
        with self.lock:
            self.files += files
            self.bytes += nbytes
            sent = max(0, self.bytes - self.resumed)
        if self.rate_limit:
            ahead = sent / self.rate_limit - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(min(ahead, 1.0))


def run_submission(
    session: Session,
    vault: Vault,
    submission_pk: int,
    *,
    data_dir: Path,
    signing_key: Ed25519PrivateKey,
    send: Sender = transfer_send,
    now: Callable[[], dt.datetime] = utcnow,
    retry_delays: Sequence[int] = RETRY_DELAYS,
    progress: Watcher | None = None,
) -> Submission | None:
    """Run (or resume) a submission; returns it, or None when another run holds it or it is
    not due. It ends done, failed, cancelled, or queued again for a retry."""
    runner = runner_id()
    if not claim(session, submission_pk, runner, now()):
        return None
    submission = session.get(Submission, submission_pk)
    assert submission is not None
    session.refresh(submission)
    dest = submission.destination
    submission.attempts += 1
    submission.started_at = submission.started_at or now()
    submission.attempt_started_at, submission.attempt_bytes = now(), 0
    submission.message = f"attempt {submission.attempts}: preparing"
    if submission.job is not None:
        job = submission.job
        job.state, job.started_at, job.finished_at = JobState.RUNNING, now(), None
    session.commit()
    try:
        if not _groups(session, submission):
            plan_files(session, submission, data_dir, dest.remote_path)
            session.commit()
        receipts = _send_groups(session, vault, submission, dest, data_dir, send, now, progress)
    except (TrialshipError, OSError) as exc:
        session.rollback()
        _sync_counts(session, submission)
        if isinstance(exc, Cancelled):
            end_submission(submission, SubmissionState.CANCELLED, "cancelled")
        elif isinstance(exc, TransferError):
            _failed(submission, str(exc), permanent=exc.permanent, delays=retry_delays, now=now())
        else:  # a changed or vanished file, a deleted exam: no retry can help
            end_submission(submission, SubmissionState.FAILED, str(exc))
        session.commit()
        return submission
    _finish(session, submission, dest, receipts, signing_key, now())
    session.commit()
    return submission


def _failed(
    submission: Submission,
    message: str,
    *,
    permanent: bool,
    delays: Sequence[int],
    now: dt.datetime,
) -> None:
    attempt = submission.attempts
    if permanent or attempt > len(delays):
        why = "" if permanent else f" (gave up after {attempt} attempts)"
        end_submission(submission, SubmissionState.FAILED, message + why)
        return
    delay = delays[attempt - 1]
    submission.state, submission.runner = SubmissionState.QUEUED, ""
    submission.not_before = now + dt.timedelta(seconds=delay)
    submission.message = f"attempt {attempt} failed: {message}; retrying in {delay} s"
    if submission.job is not None:
        submission.job.state, submission.job.message = JobState.QUEUED, submission.message


def _groups(session: Session, submission: Submission) -> dict[str, list[SubmissionFile]]:
    groups: dict[str, list[SubmissionFile]] = {}
    for row in session.scalars(
        select(SubmissionFile)
        .where(SubmissionFile.submission_pk == submission.id)
        .order_by(SubmissionFile.id)
    ):
        groups.setdefault(row.group, []).append(row)
    return groups


def journal_path(data_dir: Path, submission: Submission, group: str) -> Path:
    name = hashlib.sha256(group.encode()).hexdigest()[:16]
    return submission_folder(data_dir, submission) / f"{name}.journal"


def _send_groups(
    session: Session,
    vault: Vault,
    submission: Submission,
    dest: Destination,
    data_dir: Path,
    send: Sender,
    now: Callable[[], dt.datetime],
    progress: Watcher | None,
) -> list[tuple[str, TransferReceipt]]:
    receipts = []
    for group, rows in _groups(session, submission).items():
        target = transfer_destination(dest, vault, path=group)
        package = guarded_package(data_dir, ((r.path, r.remote, r.size, r.sha256) for r in rows))
        journal = Journal(journal_path(data_dir, submission, group), target.describe())
        try:
            _apply_journal(journal, rows, now())
            session.commit()
            receipt = _send_watched(
                session, submission, rows, package, target, journal, send, dest, progress
            )
        finally:
            # What the destination confirmed is recorded whatever happened after.
            journal.close()
            _apply_journal(journal, rows, now())
            _sync_counts(session, submission)
            session.commit()
        problem = _apply_receipt(receipt, rows, now())
        _sync_counts(session, submission)
        session.commit()
        if problem is not None:
            raise problem
        receipts.append((group, receipt))
    return receipts


def _send_watched(
    session: Session,
    submission: Submission,
    rows: Sequence[SubmissionFile],
    package: Package,
    target: Any,
    journal: Journal,
    send: Sender,
    dest: Destination,
    progress: Watcher | None,
) -> TransferReceipt:
    # The sender reports the files its journal already confirmed at once: counted as done,
    # not as sent (the rate and the bandwidth limit).
    confirmed = [r for r in rows if r.state == FileState.SENT]
    resumed_bytes = sum(r.size for r in confirmed)
    cancel = threading.Event()
    counters = _Counters(cancel, rate_limit=dest.rate_limit_kbps * 1000, resumed=resumed_bytes)
    _sync_counts(session, submission)
    base_files = submission.files_done - len(confirmed)  # the other groups' files
    base_bytes = submission.bytes_done - resumed_bytes
    outcome: dict[str, Any] = {}
    # ISO images and zips are not DICOM: their members passed the guard when the disc set or
    # the zip was built, so the sender's own guard is told they are vouched for.
    vouched = submission.package_form in ("iso", "zip") or dest.allow_identified

    def work() -> None:
        try:
            outcome["receipt"] = send(package, target, journal, counters, allow_identified=vouched)
        except BaseException as exc:  # re-raised in the job thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"submission-{submission.id}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(_POLL)
        with counters.lock:
            files, nbytes = counters.files, counters.bytes
        submission.files_done = min(submission.files_total, base_files + files)
        submission.bytes_done = min(submission.bytes_total, base_bytes + nbytes)
        submission.attempt_bytes = max(0, nbytes - resumed_bytes)
        submission.heartbeat_at = utcnow()
        submission.message = f"sending to {dest.name}"
        if submission.job is not None:
            job = submission.job
            job.done, job.total, job.message = (
                submission.files_done,
                submission.files_total,
                submission.message,
            )
        session.commit()
        if progress is not None:
            progress(submission)
        wanted = session.scalar(
            select(Submission.cancel_requested).where(Submission.id == submission.id)
        )
        if wanted:
            cancel.set()
    if "error" in outcome:
        raise outcome["error"]
    receipt: TransferReceipt = outcome["receipt"]
    return receipt


def _apply_journal(journal: Journal, rows: Sequence[SubmissionFile], at: dt.datetime) -> None:
    """Mark the rows the journal confirms as sent (a killed run's confirmations survive)."""
    for row in rows:
        entry = journal.confirmed(row.remote, row.sha256)
        if entry is not None and row.state != FileState.SENT:
            row.state, row.confirmed_at = FileState.SENT, at
            row.detail = {k: v for k, v in entry.items() if k not in ("remote", "sha256", "size")}


def _apply_receipt(
    receipt: TransferReceipt, rows: Sequence[SubmissionFile], at: dt.datetime
) -> TransferError | None:
    """Record each file's outcome; the error to raise when some were not confirmed."""
    by_remote = {row.remote: row for row in rows}
    for outcome in receipt.files:
        row = by_remote.get(outcome.remote)
        if row is None:
            continue
        row.detail = dict(outcome.detail)
        if outcome.confirmed:
            if row.state != FileState.SENT:
                row.state, row.confirmed_at = FileState.SENT, at
        else:
            row.state = FileState.FAILED
    if receipt.failed or receipt.problems:
        reasons = [str(f.detail.get("reason", f.state)) for f in receipt.failed[:3]]
        return TransferError(
            "; ".join([*receipt.problems, *reasons]) or "some files were not confirmed",
            permanent=bool(receipt.failed)
            and all(f.detail.get("permanent") for f in receipt.failed)
            and not receipt.problems,
        )
    return None


def _sync_counts(session: Session, submission: Submission) -> None:
    session.flush()
    count, size = session.execute(
        select(func.count(), func.coalesce(func.sum(SubmissionFile.size), 0)).where(
            SubmissionFile.submission_pk == submission.id,
            SubmissionFile.state == FileState.SENT,
        )
    ).one()
    submission.files_done, submission.bytes_done = int(count), int(size)


def _finish(
    session: Session,
    submission: Submission,
    dest: Destination,
    receipts: list[tuple[str, TransferReceipt]],
    signing_key: Ed25519PrivateKey,
    at: dt.datetime,
) -> None:
    _sync_counts(session, submission)
    submission.receipt = sign_receipt(receipt_payload(submission, dest, receipts, at), signing_key)
    count = submission.files_done
    end_submission(
        submission,
        SubmissionState.DONE,
        f"{count} file{'s' if count != 1 else ''} confirmed by {dest.name}",
    )


def receipt_payload(
    submission: Submission,
    dest: Destination,
    receipts: list[tuple[str, TransferReceipt]],
    at: dt.datetime,
) -> dict[str, Any]:
    """The signed record: every file's remote path (folder included), size, SHA-256 and
    outcome; the groups' manifests, markers and commitment results; the times."""
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    outcomes: dict[str, Any] = {}
    groups = []
    for group, receipt in receipts:
        for f in receipt.files:
            key = posixpath.join(group, f.remote)
            inputs[key] = f.sha256
            if f.confirmed:
                outputs[key] = f.sha256
            outcomes[key] = {"state": f.state, "size": f.size, "resumed": f.resumed, **f.detail}
        groups.append(
            {
                "destination": receipt.destination,
                "started_at": receipt.started_at.isoformat(),
                "finished_at": receipt.finished_at.isoformat(),
                "bytes_sent": receipt.bytes_sent,
                **receipt.extra,
            }
        )
    return build_receipt(
        kind="submission",
        inputs=inputs,
        outputs=outputs,
        profile_name="",
        profile_hash="",
        options=[],
        tool_version=__version__,
        created_at=at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at,
        destination=f"{dest.name} ({dest.kind.value})",
        extra={
            "submission": submission.id,
            "protocol_id": submission.trial.protocol_id,
            "scope": submission.scope_label,
            "package_form": submission.package_form,
            "trigger": submission.trigger,
            "started_at": submission.started_at.isoformat() if submission.started_at else "",
            "finished_at": at.isoformat(),
            "files": len(inputs),
            "bytes_total": sum(o["size"] for o in outcomes.values()),
            "outcomes": outcomes,
            "groups": groups,
        },
    )


def resume_stalled(session: Session, now: dt.datetime) -> list[int]:
    """Submissions to run now: queued ones that are due, and running ones whose worker died.
    The caller enqueues each (`claim` lets only one run take it)."""
    due = session.scalars(
        select(Submission.id).where(
            Submission.cancel_requested.is_(False),
            Submission.state == SubmissionState.QUEUED,
            or_(Submission.not_before.is_(None), Submission.not_before <= now),
        )
    )
    resumable = []
    for pk, _ in _stalled(session, now):
        found = session.get(Submission, pk)
        if found is not None and found.cancel_requested:
            end_submission(found, SubmissionState.CANCELLED, "cancelled (its worker had stopped)")
        else:
            resumable.append(pk)
    session.commit()
    return sorted({*due, *resumable})
