"""Burning a disc as a job: a Job row (kind "disc_burn") per burn, one burn per drive at a time.

A request records a queued job (the caller enqueues it after commit) and notes on the Disc row
who asked, for which device; the job writes the image with xorriso, reads it back, and records
the outcome on the Disc (burned at/by, device, verified, or xorriso's message) and in the Job
(progress, outcome), like the import and disc-build jobs.

One drive, one burn. A request for a drive with a queued or running burn is refused at once
with Conflict ("drive busy"): the drive holds one disc, and a burn queued behind another would
write to whatever disc the operator left in it. Two requests at the same instant could both
pass that check, so the job also holds an exclusive lock on the drive (`flock` on a file in
`<data>/locks/`) while it burns; a job that finds the drive locked fails "drive busy" without
touching it. A job left "running" by a worker that died holds no lock: the next request for
its drive marks it failed (interrupted) instead of waiting for it forever.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.errors import Conflict, NotFound, ValidationError
from trialship.media.burn import BurnError, Runner, burn_iso
from trialship.registry.discs import Disc, DiscState
from trialship.registry.models import Job, JobState, User
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.disc_sets import disc_file
from trialship.services.jobs import ProgressWriter, create_job, finish_job, start_job

KIND = "disc_burn"
LOCKS_DIR = "locks"
MAX_DEVICE = 180  # the Job target holds "disc:<id>@<device>" in 200 characters
_TARGET = re.compile(r"^disc:(\d+)@(.+)$", re.DOTALL)
_STEPS = 1000
_ACTIVE = (JobState.QUEUED, JobState.RUNNING)

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


def burn_target(job: Job) -> tuple[int, str]:
    """(disc id, device) of a burn job."""
    match = _TARGET.match(job.target)
    if match is None:
        raise NotFound(f"job {job.id} is not a disc burn")
    return int(match.group(1)), match.group(2)


def create_burn_job(
    session: Session, actor: Actor, disc: Disc, device: str, *, data_dir: Path, today: dt.date
) -> Job:
    """Record a queued burn of `disc` on `device` (the caller enqueues it after commit).

    Raises ValidationError for no device or a disc that is not ready, Conflict when the drive
    or the disc already has a queued or running burn ("drive busy")."""
    trial = disc.disc_set.trial
    require(session, actor, trial, Capability.MEDIA, today)
    device = device.strip()
    if not device:
        raise ValidationError("give the burner's device (/dev/sr0) or stdio:PATH", field="device")
    if len(device) > MAX_DEVICE or "\n" in device:
        raise ValidationError(f"a device path of at most {MAX_DEVICE} characters", field="device")
    if disc.state != DiscState.READY:
        raise ValidationError(f"disc {disc.id} is not ready to burn", field="device")
    disc_file(data_dir, disc, "iso")  # NotFound when the image is gone
    for other in _active_burns(session, data_dir):
        other_disc, other_device = burn_target(other)
        if other_device == device:
            raise Conflict(
                f"drive busy: {device} is burning disc {other_disc} (job {other.id}, "
                f"{other.state.value}); try again when it is done"
            )
        if other_disc == disc.id:
            raise Conflict(f"disc {disc.id} is already queued for burning (job {other.id})")
    job = create_job(
        session,
        kind=KIND,
        target=f"disc:{disc.id}@{device}",
        trial_id=trial.id,
        user_id=actor.user_id,
    )
    job.total, job.message = _STEPS, f"queued for {device}"
    disc.burn_device, disc.burned_by = device, actor.label
    disc.burn_message = f"burn queued (job {job.id})"
    audit.record(
        session,
        actor,
        "disc.burn_queued",
        object_type="disc",
        object_id=disc.id,
        trial_id=trial.id,
        details={"device": device, "job": job.id},
    )
    return job


def _active_burns(session: Session, data_dir: Path) -> list[Job]:
    """Queued and running burns; a running one whose drive is not locked was interrupted (its
    worker died): it is marked failed here rather than blocking its drive for ever."""
    active = []
    for job in session.scalars(select(Job).where(Job.kind == KIND, Job.state.in_(_ACTIVE))):
        if job.state == JobState.RUNNING and not _locked(data_dir, burn_target(job)[1]):
            finish_job(session, job, ok=False, message="burn interrupted: its worker stopped")
            continue
        active.append(job)
    return active


def run_burn_job(
    session: Session,
    job_id: int,
    *,
    data_dir: Path,
    clock: Clock = _utc_now,
    run: Runner = subprocess.run,
    progress: Callable[[str, float], None] | None = None,
) -> Job:
    """Burn the job's disc once; the job ends done (written and verified) or failed with
    xorriso's message, which the disc records too. A job that is not queued is left as it is
    (a re-delivered task never burns a second disc)."""
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise NotFound(f"no disc burn job {job_id}")
    if job.state != JobState.QUEUED:
        return job
    disc_id, device = burn_target(job)
    disc = session.get(Disc, disc_id)
    if disc is None:
        finish_job(session, job, ok=False, message=f"disc {disc_id} no longer exists")
        return job
    try:
        with drive_lock(data_dir, device):
            _burn(
                session,
                job,
                disc,
                device,
                data_dir=data_dir,
                clock=clock,
                run=run,
                progress=progress,
            )
    except Conflict as exc:
        disc.burn_message = str(exc)
        finish_job(session, job, ok=False, message=str(exc))
    return job


def _burn(
    session: Session,
    job: Job,
    disc: Disc,
    device: str,
    *,
    data_dir: Path,
    clock: Clock,
    run: Runner,
    progress: Callable[[str, float], None] | None,
) -> None:
    actor = _actor(session, job, disc)
    start_job(session, job, total=_STEPS, message=f"writing to {device}")
    writer = ProgressWriter(session, job)

    def report(stage: str, fraction: float) -> None:
        writer(int(_STEPS * fraction), _STEPS, f"{stage} ({device})")
        if progress is not None:
            progress(stage, fraction)

    try:
        iso = disc_file(data_dir, disc, "iso")
        result = burn_iso(iso, device, run=run, progress=report, expected_sha256=disc.sha256)
        ok, verified, message = result.ok, result.verified, result.message
    except (BurnError, NotFound) as exc:
        ok, verified = False, False
        message = " ".join((exc.message if isinstance(exc, BurnError) else str(exc)).split())
    disc.burn_device, disc.burn_message = device, message
    if ok:
        disc.burned_at, disc.burned_by, disc.burn_verified = clock(), actor.label, verified
    else:
        disc.burned_at, disc.burned_by, disc.burn_verified = None, "", False
    audit.record(
        session,
        actor,
        "disc.burn" if ok else "disc.burn_failed",
        object_type="disc",
        object_id=disc.id,
        trial_id=disc.disc_set.trial_id,
        details={"device": device, "verified": verified, "message": message[:500], "job": job.id},
    )
    finish_job(session, job, ok=ok, message=message if ok else f"not burned: {message}")


def _actor(session: Session, job: Job, disc: Disc) -> Actor:
    user = session.get(User, job.user_id) if job.user_id else None
    if user is not None:
        return Actor.of(user)
    # The command line has no user row; its label was noted on the disc with the request.
    return Actor.command_line(disc.burned_by or "cli")


def _lock_path(data_dir: Path, device: str) -> Path:
    name = hashlib.sha256(device.encode("utf-8")).hexdigest()[:32]
    return Path(data_dir) / LOCKS_DIR / f"drive-{name}.lock"


@contextlib.contextmanager
def drive_lock(data_dir: Path, device: str) -> Iterator[None]:
    """Hold the drive's lock for the block; Conflict ("drive busy") when another holds it."""
    path = _lock_path(data_dir, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"drive busy: another burn is writing to {device}") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked(data_dir: Path, device: str) -> bool:
    try:
        with drive_lock(data_dir, device):
            return False
    except Conflict:
        return True


def mark_burned(
    session: Session, actor: Actor, disc: Disc, *, today: dt.date, now: dt.datetime
) -> Disc:
    """Record a disc burned elsewhere (another machine's burner): not verified here."""
    require(session, actor, disc.disc_set.trial, Capability.MEDIA, today)
    if disc.state != DiscState.READY:
        raise ValidationError(f"disc {disc.id} is not ready")
    disc.burned_at, disc.burned_by, disc.burn_verified = now, actor.label, False
    disc.burn_device, disc.burn_message = "", "marked burned by hand (not verified here)"
    audit.record(
        session,
        actor,
        "disc.mark_burned",
        object_type="disc",
        object_id=disc.id,
        trial_id=disc.disc_set.trial_id,
    )
    return disc
