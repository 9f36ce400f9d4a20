"""Submissions: exams sent to a destination, with the state of every file; automation rules.

A submission is one request ("send exam 12 to SPONSOR-SFTP"), run as a job. Each file it
sends has a row: `pending` until the destination confirmed it, then `sent` (or `failed` with
the reason). A run that was killed resumes from these rows and from its journal files under
`<data>/submissions/<id>/`, so a confirmed file is never sent twice. The signed receipt is
stored on the submission when it ends.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialship.registry.models import Base, Job, TimePoint, Trial, _enum, utcnow

if TYPE_CHECKING:  # imported by models at its end: name the delivery table's class lazily
    from trialship.registry.delivery import Destination


class SubmissionState(enum.StrEnum):
    QUEUED = "queued"
    """Waiting for a worker (or for `not_before`, after a transient failure)."""
    RUNNING = "running"
    """A worker is sending; `heartbeat_at` says it is alive."""
    DONE = "done"
    """Every file confirmed by the destination; the receipt is signed."""
    FAILED = "failed"
    """Stopped: a permanent error, or retries exhausted. `message` says why."""
    CANCELLED = "cancelled"
    """Stopped by a person; files already confirmed stay confirmed."""


ACTIVE_STATES = (SubmissionState.QUEUED, SubmissionState.RUNNING)


class FileState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    """Confirmed by the destination (stored, or stored with a warning)."""
    FAILED = "failed"


class Submission(Base):
    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    destination_pk: Mapped[int] = mapped_column(
        ForeignKey("destinations.id", ondelete="RESTRICT"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # What was asked for: "exam 12", "time point BL", "subject 001-004", "disc set 3".
    scope: Mapped[str] = mapped_column(String(20))
    scope_label: Mapped[str] = mapped_column(String(200), default="")
    # The exams asked for (their files are listed in `files` when the first run starts), or
    # the disc set whose images are sent (package form "iso").
    exam_pks: Mapped[list[int]] = mapped_column(JSON, default=list)
    disc_set_pk: Mapped[int | None] = mapped_column(ForeignKey("disc_sets.id", ondelete="SET NULL"))
    # Who asked: a user's e-mail, "cli", or "rule 4" for automation.
    trigger: Mapped[str] = mapped_column(String(254), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[SubmissionState] = mapped_column(
        _enum(SubmissionState), default=SubmissionState.QUEUED, index=True
    )
    package_form: Mapped[str] = mapped_column(String(10), default="tree")
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The running worker's claim: a run whose heartbeat is old was killed and may be resumed.
    runner: Mapped[str] = mapped_column(String(64), default="")
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    attempt_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    attempt_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    message: Mapped[str] = mapped_column(Text, default="")
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    trial: Mapped[Trial] = relationship()
    destination: Mapped[Destination] = relationship()
    job: Mapped[Job | None] = relationship()
    files: Mapped[list[SubmissionFile]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="SubmissionFile.id"
    )


class SubmissionFile(Base):
    """One file of a submission. `path` is relative to the data folder; `group` is the unit the
    sender handles in one go (an exam's folder for SFTP, the whole submission for DICOM)."""

    __tablename__ = "submission_files"
    __table_args__ = (UniqueConstraint("submission_pk", "group", "remote"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_pk: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    exam_pk: Mapped[int | None] = mapped_column(ForeignKey("exams.id", ondelete="SET NULL"))
    group: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(String(512))
    remote: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[FileState] = mapped_column(_enum(FileState), default=FileState.PENDING)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    submission: Mapped[Submission] = relationship(back_populates="files")


class RuleMode(enum.StrEnum):
    ON_READY = "on_ready"
    """Submit each exam as soon as it is ready (de-identified, time point confirmed, pixel
    review done when it was flagged)."""
    DAILY = "daily"
    """Once a day at `daily_at` (the office's time), submit every ready exam not yet sent."""


class AutomationRule(Base):
    __tablename__ = "automation_rules"
    __table_args__ = (UniqueConstraint("trial_id", "timepoint_pk", "destination_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    # None: every time point of the trial.
    timepoint_pk: Mapped[int | None] = mapped_column(
        ForeignKey("timepoints.id", ondelete="CASCADE")
    )
    destination_pk: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    mode: Mapped[RuleMode] = mapped_column(_enum(RuleMode), default=RuleMode.ON_READY)
    daily_at: Mapped[str] = mapped_column(String(5), default="")  # "HH:MM", mode daily
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_on: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    timepoint: Mapped[TimePoint | None] = relationship()
    destination: Mapped[Destination] = relationship()
