"""Jobs of every kind in one list, and the two things a person does to one: cancel, retry.

A submission is cancelled even while it runs (it stops at its next chunk or file); an import,
a disc build or a burn is cancelled only while it waits, since each would leave half its work.
Retry queues a failed (or cancelled) job again; each kind resumes where it stopped: an import
skips the files it already imported, a disc build starts the set over
(`disc_sets.rebuild_disc_set`), a submission skips every confirmed file. A burn is never
repeated by a retry: a new blank disc needs a new burn. The face enqueues the job after
commit (`jobs.tasks.enqueue_job`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trialship.errors import Conflict
from trialship.registry.discs import DiscSet
from trialship.registry.models import Job, JobState, Membership, Trial, utcnow
from trialship.registry.submissions import Submission
from trialship.services import audit, disc_burns, disc_sets, import_jobs, submissions
from trialship.services.authz import Actor, Capability, require

CANCELLABLE_WHILE_RUNNING = frozenset({submissions.KIND})
_CAPABILITY = {
    import_jobs.KIND: Capability.REGISTRY,
    disc_sets.KIND: Capability.MEDIA,
    disc_burns.KIND: Capability.MEDIA,
    submissions.KIND: Capability.MEDIA,
}


def list_jobs(
    session: Session, actor: Actor, *, trial: Trial | None = None, state: str = "", limit: int = 100
) -> list[Job]:
    """The newest jobs the actor may see (of the trial, when given)."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if trial is not None:
        query = query.where(Job.trial_id == trial.id)
    if state:
        query = query.where(Job.state == JobState(state))
    if not actor.is_admin:
        # Every role of a trial reads its jobs; anyone reads their own.
        member_of = select(Membership.trial_id).where(Membership.user_id == actor.user_id)
        query = query.where(or_(Job.user_id == actor.user_id, Job.trial_id.in_(member_of)))
    return list(session.scalars(query))


def _trial_of(session: Session, job: Job) -> Trial:
    trial = session.get(Trial, job.trial_id) if job.trial_id else None
    if trial is None:
        raise Conflict(f"job {job.id} belongs to no trial")
    return trial


def _submission_of(session: Session, job: Job) -> Submission:
    found = submissions.submission_by_job(session, job)
    if found is None:
        raise Conflict(f"job {job.id} has no submission")
    return found


def cancel_job(session: Session, actor: Actor, job: Job, today: dt.date) -> Job:
    trial = _trial_of(session, job)
    if job.kind == submissions.KIND:
        submissions.cancel_submission(session, actor, _submission_of(session, job), today)
        return job
    require(session, actor, trial, _CAPABILITY.get(job.kind, Capability.TRIAL_ADMIN), today)
    if job.state == JobState.RUNNING:
        raise Conflict(f"job {job.id} ({job.kind}) is running and cannot be stopped halfway")
    if job.state != JobState.QUEUED:
        raise Conflict(f"job {job.id} is {job.state.value}: nothing to cancel")
    job.state, job.finished_at, job.message = JobState.CANCELLED, utcnow(), "cancelled"
    audit.record(
        session, actor, "job.cancel", object_type="job", object_id=job.id, trial_id=trial.id
    )
    return job


def retry_job(session: Session, actor: Actor, job: Job, today: dt.date) -> Job:
    trial = _trial_of(session, job)
    if job.kind == submissions.KIND:
        submissions.retry_submission(session, actor, _submission_of(session, job), today)
        return job
    if job.kind == disc_sets.KIND:
        disc_set = session.scalar(select(DiscSet).where(DiscSet.job_id == job.id))
        if disc_set is None:
            raise Conflict(f"job {job.id} has no disc set")
        return disc_sets.rebuild_disc_set(session, actor, disc_set, today=today)
    require(session, actor, trial, _CAPABILITY.get(job.kind, Capability.TRIAL_ADMIN), today)
    if job.kind == disc_burns.KIND:
        raise Conflict("a burn is not repeated: put in a new blank disc and burn it again")
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        raise Conflict(
            f"job {job.id} is {job.state.value}: only a failed or cancelled job is retried"
        )
    job.state, job.finished_at, job.message = JobState.QUEUED, None, "queued again"
    audit.record(
        session, actor, "job.retry", object_type="job", object_id=job.id, trial_id=trial.id
    )
    return job
