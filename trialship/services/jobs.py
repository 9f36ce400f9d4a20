"""The Job row of a long use case: create, start, report progress, finish.

A job records what a face polls (done of total, a message) and ends done or failed with the
message; the use case decides what counts as progress.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from trialship.registry.models import Job, JobState, utcnow


def create_job(
    session: Session, *, kind: str, target: str, trial_id: int | None, user_id: int | None
) -> Job:
    job = Job(kind=kind, target=target, trial_id=trial_id, user_id=user_id)
    session.add(job)
    session.flush()
    return job


def start_job(session: Session, job: Job, *, total: int = 0, message: str = "") -> None:
    job.state, job.started_at, job.finished_at = JobState.RUNNING, utcnow(), None
    job.done, job.total, job.message = 0, total, message
    session.commit()


def finish_job(session: Session, job: Job, *, ok: bool, message: str) -> None:
    job.state = JobState.DONE if ok else JobState.FAILED
    job.finished_at, job.message = utcnow(), message
    if ok:
        job.done = job.total
    session.commit()


class ProgressWriter:
    """Writes done/total/message to the job, committing at most every `interval` seconds
    (the last value of a stage always lands: `flush`)."""

    def __init__(self, session: Session, job: Job, *, interval: float = 0.5) -> None:
        self.session, self.job, self.interval = session, job, interval
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str) -> None:
        self.job.done, self.job.total, self.job.message = done, total, message
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.session.commit()

    def flush(self) -> None:
        self.session.commit()
