"""Queued imports: an upload folder, a Job row (kind "import"), and running it from the queue.

The upload is kept in ``<data>/uploads/imports/<token>/`` (mode 0700) under numbered names (the
names people give files may hold PHI) until its job finishes; a failed or killed job keeps it,
so running the job again continues the import where it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from trialship.crypto import Vault
from trialship.errors import NotFound, TrialshipError, ValidationError
from trialship.registry.models import Job, JobState, Trial, User, utcnow
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.exam_import import import_exams, restricted_folder
from trialship.services.subjects import subject_by_code
from trialship.services.timepoints import timepoint_by_code

KIND = "import"
UPLOADS_DIR = "uploads/imports"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_OPTIONS = "options.json"
_FILES = "files"


def new_upload(data_dir: Path) -> tuple[str, Path]:
    """A fresh upload folder: (token, the folder to write the files into)."""
    token = secrets.token_urlsafe(18)
    files = restricted_folder(Path(data_dir) / UPLOADS_DIR / token / _FILES)
    return token, files


def upload_file_path(files: Path, number: int) -> Path:
    return files / f"{number:06d}.upload"


def _upload_folder(data_dir: Path, job: Job) -> Path:
    token = job.target.removeprefix("upload:")
    if not _TOKEN.match(token):
        raise NotFound(f"job {job.id} has no upload")
    return Path(data_dir) / UPLOADS_DIR / token


def discard_upload(data_dir: Path, token: str) -> None:
    if _TOKEN.match(token):
        shutil.rmtree(Path(data_dir) / UPLOADS_DIR / token, ignore_errors=True)


def create_import_job(
    session: Session,
    actor: Actor,
    trial: Trial,
    token: str,
    *,
    data_dir: Path,
    today: dt.date,
    subject_id: str = "",
    timepoint_id: str = "",
) -> Job:
    """Record a queued import of the upload `token` (the caller enqueues it after commit)."""
    require(session, actor, trial, Capability.REGISTRY, today)
    if timepoint_id and not subject_id:
        raise ValidationError("a time point is given only with a subject", field="timepoint_id")
    if subject_id:
        subject_by_code(session, trial, subject_id)
    if timepoint_id:
        timepoint_by_code(session, trial, timepoint_id)
    folder = Path(data_dir) / UPLOADS_DIR / token
    files = folder / _FILES
    if not _TOKEN.match(token) or not files.is_dir() or not any(files.iterdir()):
        raise ValidationError("choose one or more files (or a zip) to import", field="files")
    (folder / _OPTIONS).write_text(
        json.dumps({"subject_id": subject_id, "timepoint_id": timepoint_id}), encoding="utf-8"
    )
    job = Job(kind=KIND, target=f"upload:{token}", trial_id=trial.id, user_id=actor.user_id)
    job.total = sum(1 for _ in files.iterdir())
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor,
        "exam.import_queued",
        object_type="job",
        object_id=job.id,
        trial_id=trial.id,
        details={"uploads": job.total, "explicit_subject": bool(subject_id)},
    )
    return job


def get_job(session: Session, actor: Actor, job_id: int, today: dt.date) -> Job:
    """A job the actor may see: one of a trial they can read, or their own."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    trial = session.get(Trial, job.trial_id) if job.trial_id else None
    if trial is not None:
        require(session, actor, trial, Capability.READ, today)
    elif not actor.is_admin and job.user_id != actor.user_id:
        raise NotFound(f"no job {job_id}")
    return job


def run_import_job(
    session: Session,
    vault: Vault,
    job_id: int,
    *,
    data_dir: Path,
    signing_key: Ed25519PrivateKey,
    today: dt.date,
    now: dt.datetime,
) -> Job:
    """Run (or continue) a queued import; the job ends done or failed with its message."""
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise NotFound(f"no import job {job_id}")
    if job.state in (JobState.DONE, JobState.CANCELLED):
        return job  # idempotent: a re-delivered task changes nothing
    job.state, job.started_at, job.message = JobState.RUNNING, utcnow(), ""
    session.commit()
    try:
        folder = _upload_folder(data_dir, job)
        options = json.loads((folder / _OPTIONS).read_text(encoding="utf-8"))
        trial = session.get(Trial, job.trial_id)
        user = session.get(User, job.user_id) if job.user_id else None
        if trial is None or user is None or not user.active:
            raise NotFound("the job's trial or user no longer exists")
        summary = import_exams(
            session,
            Actor.of(user),
            vault,
            trial,
            [folder / _FILES],
            data_dir=data_dir,
            signing_key=signing_key,
            today=today,
            now=now,
            subject_id=options.get("subject_id", ""),
            timepoint_id=options.get("timepoint_id", ""),
            job=job,
        )
    except (TrialshipError, OSError, ValueError) as exc:
        session.rollback()
        job.state, job.finished_at = JobState.FAILED, utcnow()
        job.message = f"import failed: {exc}"
        session.commit()
        return job
    job.state, job.finished_at, job.message = JobState.DONE, utcnow(), summary.line()
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    return job
