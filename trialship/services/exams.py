"""Imported exams: list, time point confirmation, pixel review, the key, receipts, quarantine,
and the retention of originals."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from trialship import vr
from trialship.crypto import Vault
from trialship.errors import NotFound, ValidationError
from trialship.registry.imaging import Instance, KeyEntry, QuarantinedFile, Series
from trialship.registry.models import Exam, Subject, TimePoint, Trial, utcnow
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.exam_import import ORIGINALS_DIR, redeidentify_exam
from trialship.services.fields import Spec, get_in_trial

KEY_COLUMNS = ["subject_id", "exam", "timepoint_id", "kind", "original", "replacement"]
KEY_FORMATS = ["json", "csv"]
CONFIRMATION_FIELDS: Spec = {
    "timepoint_id": lambda v: vr.identifier("timepoint_id", v),
}
"""What confirming an exam's time point takes (by the time point's ID)."""


def list_exams(session: Session, trial: Trial) -> list[Exam]:
    """The trial's exams by subject and study date, with subject and time point loaded."""
    return list(
        session.scalars(
            select(Exam)
            .join(Subject, Subject.id == Exam.subject_pk)
            .where(Exam.trial_id == trial.id)
            .options(selectinload(Exam.subject), selectinload(Exam.timepoint))
            .order_by(Subject.subject_id, Exam.study_date, Exam.id)
        )
    )


def exam_instances(session: Session, exam: Exam) -> list[Instance]:
    """The exam's de-identified files, by series and instance number."""
    return list(
        session.scalars(
            select(Instance)
            .join(Series, Series.id == Instance.series_pk)
            .where(Series.exam_pk == exam.id)
            .order_by(Series.series_number, Instance.instance_number, Instance.id)
        )
    )


def get_exam(session: Session, trial: Trial, exam_pk: int) -> Exam:
    return get_in_trial(session, Exam, trial, exam_pk, "exam")


def exam_series(session: Session, exam: Exam) -> list[Series]:
    return list(
        session.scalars(
            select(Series)
            .where(Series.exam_pk == exam.id)
            .options(selectinload(Series.instances))
            .order_by(Series.series_number, Series.id)
        )
    )


def confirm_timepoint(
    session: Session,
    actor: Actor,
    vault: Vault,
    exam: Exam,
    timepoint: TimePoint,
    *,
    today: dt.date,
    data_dir: Path,
    signing_key: Ed25519PrivateKey,
    now: dt.datetime,
) -> Exam:
    """Set and confirm the exam's time point. A different time point than the one written in
    the files re-de-identifies them from their originals (the time point is in their headers)."""
    trial = exam.subject.trial
    require(session, actor, trial, Capability.REGISTRY, today)
    if timepoint.trial_id != trial.id:
        raise ValidationError("the time point is not in the exam's trial", field="timepoint_id")
    changed = exam.timepoint_pk != timepoint.id
    exam.timepoint = timepoint
    exam.timepoint_confirmed = True
    if changed and exam.file_count:
        redeidentify_exam(session, vault, exam, data_dir=data_dir, signing_key=signing_key, now=now)
    audit.record(
        session,
        actor,
        "exam.timepoint_confirm",
        object_type="exam",
        object_id=exam.id,
        trial_id=trial.id,
        details={"timepoint_id": timepoint.timepoint_id, "changed": changed},
    )
    return exam


def mark_pixels_reviewed(session: Session, actor: Actor, exam: Exam, today: dt.date) -> Exam:
    trial = exam.subject.trial
    require(session, actor, trial, Capability.REGISTRY, today)
    exam.pixel_reviewed_at = utcnow()
    audit.record(
        session,
        actor,
        "exam.pixel_review",
        object_type="exam",
        object_id=exam.id,
        trial_id=trial.id,
    )
    return exam


def receipt(session: Session, actor: Actor, exam: Exam, today: dt.date) -> dict[str, Any]:
    """The exam's signed receipt (no PHI in it: hashes, subject ID, new UIDs)."""
    require(session, actor, exam.subject.trial, Capability.READ, today)
    if not exam.receipt:
        raise NotFound("this exam has no receipt yet (its import has not finished)")
    return exam.receipt


def content_sha256(row: QuarantinedFile) -> str | None:
    """The refused file's SHA-256 (as `sha256sum` prints it) when its bytes were read: it
    tells which file it was without its name. None for an input refused unread (a zip entry,
    an unreadable file), whose row holds a keyed hash of its name instead."""
    return row.sha256 if row.size or row.stored_path else None


def position(row: QuarantinedFile) -> str:
    """Where the refused file was among its import's inputs, never its name: "item 3", or
    "item 3, zip entry 2" for an entry of a zip (counted as `zipinfo` lists them); empty for a
    row recorded before positions were kept."""
    if row.item is None:
        return ""
    if row.zip_entry is None:
        return f"item {row.item}"
    return f"item {row.item}, zip entry {row.zip_entry}"


def list_quarantine(session: Session, trial: Trial) -> list[QuarantinedFile]:
    return list(
        session.scalars(
            select(QuarantinedFile)
            .where(QuarantinedFile.trial_id == trial.id)
            .order_by(QuarantinedFile.id.desc())
        )
    )


# -- the re-identification key -----------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    subject_id: str
    exam: int
    timepoint_id: str
    kind: str
    original: str
    replacement: str

    def as_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in KEY_COLUMNS}


def read_key(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    today: dt.date,
    *,
    export: bool = False,
) -> list[KeyRow]:
    """The decrypted key of the trial: trial admins only, every read audited."""
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    rows = []
    query = (
        select(KeyEntry, Exam)
        .join(Exam, Exam.id == KeyEntry.exam_pk)
        .where(KeyEntry.trial_id == trial.id)
        .options(selectinload(Exam.subject), selectinload(Exam.timepoint))
        .order_by(Exam.id, KeyEntry.kind, KeyEntry.id)
    )
    for entry, exam in session.execute(query):
        rows.append(
            KeyRow(
                subject_id=exam.subject.subject_id,
                exam=exam.id,
                timepoint_id=exam.timepoint.timepoint_id if exam.timepoint else "",
                kind=entry.kind,
                original=vault.decrypt(entry.original_encrypted),
                replacement=entry.replacement,
            )
        )
    audit.record(
        session,
        actor,
        "exam.key_export" if export else "exam.key_view",
        object_type="trial",
        object_id=trial.id,
        trial_id=trial.id,
        details={"entries": len(rows)},
    )
    return rows


def key_csv(rows: list[KeyRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, KEY_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        # A leading =, +, - or @ would make a spreadsheet run the cell as a formula.
        values = row.as_dict()
        for name in ("original", "replacement"):
            if str(values[name]).startswith(("=", "+", "-", "@")):
                values[name] = "'" + str(values[name])
        writer.writerow(values)
    return out.getvalue()


# -- retention ----------------------------------------------------------------------------


def purge_originals(
    session: Session, data_dir: Path, *, retention_days: int, now: dt.datetime
) -> int:
    """Delete stored originals older than `retention_days` (the rows stay, their original path
    emptied). Returns how many files were deleted.

    A file's age is that of its row, or of the file itself when it was stored again since (an
    import of the same file after a purge keeps it for re-processing for a new period)."""
    cutoff = now - dt.timedelta(days=retention_days)
    holders = ((Instance, Instance.original_path), (QuarantinedFile, QuarantinedFile.stored_path))
    candidates: set[str] = set()
    for model, column in holders:
        candidates.update(
            session.scalars(select(column).where(column != "", model.created_at < cutoff))
        )
    old = sorted(path for path in candidates if _stored_before(data_dir / path, cutoff))
    deleted = 0
    for start in range(0, len(old), _PURGE_BATCH):
        batch = old[start : start + _PURGE_BATCH]
        for model, column in holders:
            session.execute(
                update(model)
                .where(column.in_(batch), model.created_at < cutoff)
                .values({column.key: ""})
            )
        session.flush()
        # A newer row may hold the same file (stored by content): it stays.
        in_use: set[str] = set()
        for _, column in holders:
            in_use.update(session.scalars(select(column).where(column.in_(batch))))
        for relative in batch:
            path = data_dir / relative
            if (
                relative not in in_use
                and relative.startswith(ORIGINALS_DIR + "/")
                and path.is_file()
            ):
                path.unlink()
                deleted += 1
    if deleted:
        audit.record(
            session,
            None,
            "exam.originals_purged",
            details={"files": deleted, "retention_days": retention_days},
        )
    return deleted


_PURGE_BATCH = 500
"""Paths per IN list (databases bound the number of parameters of one statement)."""


def _stored_before(path: Path, cutoff: dt.datetime) -> bool:
    """Whether the file was written before `cutoff` (naive UTC, as the rows' times); a file
    that is gone counts as old, so that its row lets go of it."""
    try:
        written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    except FileNotFoundError:
        return True
    return written < cutoff
