"""Disc sets built from imported exams: the set, its discs, the exams on each, and the burns.

Image and label paths are relative to the data folder
(`discs/<trial_id>/<set_id>/DISCnnn.iso`). A disc is `ready` only after its image was read back
and every file's SHA-256 matched the manifest; a burn is recorded on the disc (who, when, and
whether the read-back from the drive matched, or xorriso's message).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialship.registry.models import Base, Exam, Trial, User, _enum, utcnow


class DiscSetState(enum.StrEnum):
    PLANNED = "planned"
    """Recorded, its build job queued."""
    BUILDING = "building"
    """The job is writing images."""
    READY = "ready"
    """Every disc built and read back."""
    FAILED = "failed"
    """The build stopped; `message` says why. No disc of the set is ready."""


class DiscState(enum.StrEnum):
    PLANNED = "planned"
    READY = "ready"
    """The image was read back and matched its manifest."""
    FAILED = "failed"


disc_exams = Table(
    "disc_exams",
    Base.metadata,
    Column("disc_pk", ForeignKey("discs.id", ondelete="CASCADE"), primary_key=True),
    Column("exam_pk", ForeignKey("exams.id", ondelete="CASCADE"), primary_key=True),
)


class DiscSet(Base):
    __tablename__ = "disc_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    medium: Mapped[str] = mapped_column(String(10), default="auto")
    policy: Mapped[str] = mapped_column(String(10), default="pack")
    label_template: Mapped[str] = mapped_column(String(64), default="cd_face")
    state: Mapped[DiscSetState] = mapped_column(_enum(DiscSetState), default=DiscSetState.PLANNED)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")

    trial: Mapped[Trial] = relationship()
    creator: Mapped[User | None] = relationship()
    exams: Mapped[list[Exam]] = relationship(secondary="disc_set_exams", order_by="Exam.id")
    discs: Mapped[list[Disc]] = relationship(
        back_populates="disc_set", cascade="all, delete-orphan", order_by="Disc.index"
    )


# The exams chosen for a set (before the build decides which disc holds which).
disc_set_exams = Table(
    "disc_set_exams",
    Base.metadata,
    Column("disc_set_pk", ForeignKey("disc_sets.id", ondelete="CASCADE"), primary_key=True),
    Column("exam_pk", ForeignKey("exams.id", ondelete="CASCADE"), primary_key=True),
)


class Disc(Base):
    __tablename__ = "discs"
    __table_args__ = (UniqueConstraint("disc_set_pk", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    disc_set_pk: Mapped[int] = mapped_column(
        ForeignKey("disc_sets.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    medium: Mapped[str] = mapped_column(String(10))
    fileset_id: Mapped[str] = mapped_column(String(16), default="")
    iso_path: Mapped[str] = mapped_column(String(512), default="")
    label_path: Mapped[str] = mapped_column(String(512), default="")
    image_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[DiscState] = mapped_column(_enum(DiscState), default=DiscState.PLANNED)
    burned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    burned_by: Mapped[str] = mapped_column(String(254), default="")
    burn_device: Mapped[str] = mapped_column(String(255), default="")
    burn_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    burn_message: Mapped[str] = mapped_column(Text, default="")

    disc_set: Mapped[DiscSet] = relationship(back_populates="discs")
    exams: Mapped[list[Exam]] = relationship(secondary=disc_exams, order_by="Exam.id")
