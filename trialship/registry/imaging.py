"""What an imported exam is made of: series, instances, the re-identification key, quarantine."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialship.registry.models import Base, Exam, utcnow


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("exam_pk", "series_instance_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_pk: Mapped[int] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    series_number: Mapped[int | None] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(64), default="")

    exam: Mapped[Exam] = relationship()
    instances: Mapped[list[Instance]] = relationship(
        back_populates="series", cascade="all, delete-orphan", order_by="Instance.instance_number"
    )


class Instance(Base):
    """One de-identified file. Paths are relative to the data folder."""

    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("trial_id", "original_sop_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    original_sop_hash: Mapped[str] = mapped_column(String(64))
    input_sha256: Mapped[str] = mapped_column(String(64))
    output_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(512), index=True, unique=True)
    """Looked up on every import; unique: two imports at once may pick one name, and the
    second row refused is what tells that import to take another (its file not written)."""
    original_path: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    attribute_report_pk: Mapped[int | None] = mapped_column(
        ForeignKey("attribute_reports.id", ondelete="SET NULL")
    )

    series: Mapped[Series] = relationship(back_populates="instances")


class AttributeReport(Base):
    """What de-identification did to each attribute of a file, by tag and sequence path: the
    action and why, never a value. Files alike (a series, mostly) share one."""

    __tablename__ = "attribute_reports"
    __table_args__ = (UniqueConstraint("trial_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    """Of `entries`: the same report is stored once."""
    entries: Mapped[str] = mapped_column(Text)
    """JSON: a list of {tag, keyword, path, action, detail}."""


class KeyEntry(Base):
    """The re-identification key: an original value (encrypted) and what replaced it.

    Readable by trial admins only; every view and export is audited.
    """

    __tablename__ = "key_entries"
    __table_args__ = (UniqueConstraint("exam_pk", "kind", "replacement"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    exam_pk: Mapped[int] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    original_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    replacement: Mapped[str] = mapped_column(String(128))


class QuarantinedFile(Base):
    """An input that was not imported, with the reason (no PHI in the reason or the name)."""

    __tablename__ = "quarantined_files"
    # Every imported file clears its earlier quarantine by hash.
    __table_args__ = (Index("ix_quarantined_files_trial_id_sha256", "trial_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    stored_path: Mapped[str] = mapped_column(String(512), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text)
    item: Mapped[int | None] = mapped_column(Integer)
    """Where it was among its import's inputs, counted from 1 (as the job counts them done)."""
    zip_entry: Mapped[int | None] = mapped_column(Integer)
    """For an entry of a zip read before it was refused: its place in the zip's directory,
    counted from 1 (as the import's labels count entries of one name). Never its name: names
    may identify a patient."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
