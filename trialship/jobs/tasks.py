"""The tasks of the queue. Each is registered on the runtime's huey instance."""

from __future__ import annotations

import datetime as dt
import time
import weakref
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from huey import Huey, crontab

from trialship.registry.models import Job
from trialship.services import (
    automation,
    disc_burns,
    disc_sets,
    exams,
    housekeeping,
    import_jobs,
    submissions,
)
from trialship.services.submission_run import resume_stalled, run_submission
from trialship.signing import load_or_create_signing_key

if TYPE_CHECKING:
    from trialship.app import Runtime

# The task wrappers of each queue, so that faces enqueue by name (see `enqueue_import`).
_TASKS: weakref.WeakKeyDictionary[Huey, dict[str, Any]] = weakref.WeakKeyDictionary()


def register_tasks(queue: Huey, runtime: Runtime) -> None:
    @queue.periodic_task(crontab(minute="5"))  # type: ignore[untyped-decorator]
    def irb_expiry() -> int:
        """Hourly: record in the audit trail each trial whose IRB approval has lapsed."""
        with runtime.db.unit_of_work() as session:
            return housekeeping.record_irb_expiries(session, runtime.today())

    @queue.periodic_task(crontab(minute="35", hour="2"))  # type: ignore[untyped-decorator]
    def originals_retention() -> int:
        """Daily: delete stored originals older than the retention setting."""
        with runtime.db.unit_of_work() as session:
            return exams.purge_originals(
                session,
                runtime.settings.data_dir,
                retention_days=runtime.settings.originals_retention_days,
                now=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            )

    @queue.periodic_task(crontab(minute="45", hour="2"))  # type: ignore[untyped-decorator]
    def import_scratch_sweep() -> int:
        """Daily: remove the scratch folders that killed imports left."""
        return housekeeping.remove_stale_import_scratch(runtime.settings.data_dir, now=time.time())

    @queue.task()  # type: ignore[untyped-decorator]
    def import_exams(job_id: int) -> str:
        """Run (or continue) a queued import; the Job row records progress and the outcome."""
        with runtime.db.unit_of_work() as session:
            job = import_jobs.run_import_job(
                session,
                runtime.vault,
                job_id,
                data_dir=runtime.settings.data_dir,
                signing_key=load_or_create_signing_key(runtime.settings.data_dir),
                today=runtime.today(),
                now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            )
            state = job.state.value
        # Exams the import made ready go out at once where a rule says so.
        apply_rules(runtime)
        return state

    @queue.task()  # type: ignore[untyped-decorator]
    def build_disc_set(job_id: int) -> str:
        """Build (or rebuild) a disc set; the Job row records progress and the outcome."""
        with runtime.db.unit_of_work() as session:
            job = disc_sets.run_build_job(session, job_id, data_dir=runtime.settings.data_dir)
            return job.state.value

    @queue.task()  # type: ignore[untyped-decorator]
    def burn_disc(job_id: int) -> str:
        """Burn a disc (one burn per drive at a time); the Job row records progress and the
        outcome, the Disc row the burn."""
        with runtime.db.unit_of_work() as session:
            job = disc_burns.run_burn_job(session, job_id, data_dir=runtime.settings.data_dir)
            return job.state.value

    @queue.task()  # type: ignore[untyped-decorator]
    def send_submission(submission_pk: int) -> str:
        """Run (or resume) a submission; the row records per-file state and the outcome."""
        with runtime.db.unit_of_work() as session:
            submission = run_submission(
                session,
                runtime.vault,
                submission_pk,
                data_dir=runtime.settings.data_dir,
                signing_key=load_or_create_signing_key(runtime.settings.data_dir),
            )
            return submission.state.value if submission is not None else "not claimed"

    @queue.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
    def submissions_sweep() -> int:
        """Every minute: automation rules, retries that are due, runs whose worker died."""
        return sweep_submissions(runtime)

    _TASKS[queue] = {
        "import_exams": import_exams,
        "build_disc_set": build_disc_set,
        "send_submission": send_submission,
        "burn_disc": burn_disc,
    }


def apply_rules(runtime: Runtime) -> int:
    """Create the submissions that automation rules ask for now, and queue them."""
    zone = ZoneInfo(runtime.settings.timezone) if runtime.settings.timezone else None
    with runtime.db.unit_of_work() as session:
        created = automation.submit_ready(session, runtime.today(), dt.datetime.now(zone))
        session.commit()
        ids = [s.id for s in created]
    for pk in ids:
        enqueue_submission(runtime, pk)
    return len(ids)


def _resume(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        due = resume_stalled(session, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    for pk in due:
        enqueue_submission(runtime, pk)
    return len(due)


def enqueue_import(runtime: Runtime, job_id: int) -> None:
    """Queue the import job (runs inline when the queue is `memory:`)."""
    _TASKS[runtime.queue]["import_exams"](job_id)


def enqueue_disc_build(runtime: Runtime, job_id: int) -> None:
    """Queue the disc set's build job (runs inline when the queue is `memory:`)."""
    _TASKS[runtime.queue]["build_disc_set"](job_id)


def enqueue_disc_burn(runtime: Runtime, job_id: int) -> None:
    """Queue a disc's burn job (runs inline when the queue is `memory:`)."""
    _TASKS[runtime.queue]["burn_disc"](job_id)


def enqueue_submission(runtime: Runtime, submission_pk: int) -> None:
    """Queue a submission's run (runs inline when the queue is `memory:`)."""
    _TASKS[runtime.queue]["send_submission"](submission_pk)


def sweep_submissions(runtime: Runtime) -> int:
    """What the minute task does, for a face that wants it now (the CLI, tests)."""
    return apply_rules(runtime) + _resume(runtime)


def enqueue_job(runtime: Runtime, job: Job) -> None:
    """Queue a job of any kind again (after `job_control.retry_job`)."""
    if job.kind == submissions.KIND:
        enqueue_submission(runtime, int(job.target.removeprefix("submission:")))
    elif job.kind == disc_sets.KIND:
        enqueue_disc_build(runtime, job.id)
    elif job.kind == disc_burns.KIND:
        enqueue_disc_burn(runtime, job.id)
    else:
        enqueue_import(runtime, job.id)
