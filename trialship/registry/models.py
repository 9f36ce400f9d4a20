"""SQLAlchemy models of the registry. Every change here needs an Alembic revision."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings so that adding a member needs no ALTER TYPE.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


class TrialStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class SubjectStatus(enum.StrEnum):
    SCREENING = "screening"
    ENROLLED = "enrolled"
    WITHDRAWN = "withdrawn"


class Role(enum.StrEnum):
    """A user's role in one trial, from least to most rights."""

    VIEWER = "viewer"
    MEDIA = "media"
    COORDINATOR = "coordinator"
    TRIAL_ADMIN = "trial_admin"


class ExamState(enum.StrEnum):
    RECEIVED = "received"
    DEIDENTIFIED = "deidentified"
    QUARANTINED = "quarantined"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # Flask-Login's protocol, kept here so that the web layer needs no wrapper class.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class Trial(Base):
    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(primary_key=True)
    short_name: Mapped[str] = mapped_column(String(64))
    sponsor_name: Mapped[str] = mapped_column(String(64))
    protocol_id: Mapped[str] = mapped_column(String(64), unique=True)
    protocol_name: Mapped[str] = mapped_column(String(64), default="")
    ethics_committee_name: Mapped[str] = mapped_column(String(64), default="")
    ethics_approval_number: Mapped[str] = mapped_column(String(64), default="")
    irb_expiry: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[TrialStatus] = mapped_column(_enum(TrialStatus), default=TrialStatus.ACTIVE)
    coordinating_center: Mapped[str] = mapped_column(String(64), default="")
    deid_profile: Mapped[str] = mapped_column(Text, default="")
    disc_media: Mapped[str] = mapped_column(String(10), default="auto")
    disc_policy: Mapped[str] = mapped_column(String(10), default="pack")
    label_template: Mapped[str] = mapped_column(String(64), default="cd_face")
    # The trial's de-identification secret (UID remapping, date shifts), Fernet-encrypted;
    # made on first use so that it never appears in the profile text users see.
    uid_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    missing_after_days: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    sites: Mapped[list[Site]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", order_by="Site.site_id"
    )
    subjects: Mapped[list[Subject]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", order_by="Subject.subject_id"
    )
    timepoints: Mapped[list[TimePoint]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", order_by="TimePoint.order"
    )

    def irb_expired(self, today: dt.date) -> bool:
        return self.irb_expiry is not None and self.irb_expiry < today


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("trial_id", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), default="")

    trial: Mapped[Trial] = relationship(back_populates="sites")


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("trial_id", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    site_pk: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    subject_id: Mapped[str] = mapped_column(String(64))
    reading_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[SubjectStatus] = mapped_column(
        _enum(SubjectStatus), default=SubjectStatus.ENROLLED
    )
    consent_distribution: Mapped[bool] = mapped_column(Boolean, default=False)
    baseline_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="subjects")
    site: Mapped[Site | None] = relationship()
    identifiers: Mapped[list[SubjectIdentifier]] = relationship(
        back_populates="subject", cascade="all, delete-orphan"
    )
    exams: Mapped[list[Exam]] = relationship(back_populates="subject")


class SubjectIdentifier(Base):
    """An original patient identifier (MRN + issuer): encrypted, with a keyed hash to match on."""

    __tablename__ = "subject_identifiers"
    __table_args__ = (UniqueConstraint("trial_id", "value_hash", "issuer_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    issuer_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    value_hash: Mapped[str] = mapped_column(String(64), index=True)
    issuer_hash: Mapped[str] = mapped_column(String(64))

    subject: Mapped[Subject] = relationship(back_populates="identifiers")


class TimePoint(Base):
    __tablename__ = "timepoints"
    __table_args__ = (UniqueConstraint("trial_id", "timepoint_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    timepoint_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    order: Mapped[int] = mapped_column(Integer, default=0)
    day_offset: Mapped[int] = mapped_column(Integer, default=0)
    window_minus: Mapped[int] = mapped_column(Integer, default=0)
    window_plus: Mapped[int] = mapped_column(Integer, default=0)

    trial: Mapped[Trial] = relationship(back_populates="timepoints")
    expected_exams: Mapped[list[ExpectedExam]] = relationship(
        back_populates="timepoint", cascade="all, delete-orphan", order_by="ExpectedExam.id"
    )


class ExpectedExam(Base):
    __tablename__ = "expected_exams"

    id: Mapped[int] = mapped_column(primary_key=True)
    timepoint_pk: Mapped[int] = mapped_column(ForeignKey("timepoints.id", ondelete="CASCADE"))
    modality: Mapped[str] = mapped_column(String(16))
    description_pattern: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int] = mapped_column(Integer, default=1)

    timepoint: Mapped[TimePoint] = relationship(back_populates="expected_exams")


class Exam(Base):
    __tablename__ = "exams"
    __table_args__ = (UniqueConstraint("trial_id", "study_uid_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="RESTRICT"))
    timepoint_pk: Mapped[int | None] = mapped_column(
        ForeignKey("timepoints.id", ondelete="SET NULL")
    )
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    modality: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[ExamState] = mapped_column(_enum(ExamState), default=ExamState.RECEIVED)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Keyed hash of the original StudyInstanceUID: the same study imported again is this exam.
    study_uid_hash: Mapped[str | None] = mapped_column(String(64))
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    timepoint_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    needs_pixel_review: Mapped[bool] = mapped_column(Boolean, default=False)
    pixel_reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")

    subject: Mapped[Subject] = relationship(back_populates="exams")
    timepoint: Mapped[TimePoint | None] = relationship()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "trial_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_enum(Role))

    user: Mapped[User] = relationship(back_populates="memberships")
    trial: Mapped[Trial] = relationship()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class AuditEvent(Base):
    """What happened, by whom. Append-only: the ORM refuses updates and deletes."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="SET NULL"), index=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _audit_is_append_only(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise PermissionError("audit events are append-only")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("trials.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


# The imaging and delivery tables live in their own modules; importing them completes the metadata.
from trialship.registry import delivery, discs, imaging, submissions  # noqa: E402, F401
