"""Import DICOM files into a trial: store the original, match the subject, group into exams,
de-identify with the trial's profile, record the rows, the key and a signed receipt per exam.

Each file is one transaction (committed when it is done), so a killed import re-run continues
where it stopped: a file whose original SOP Instance UID and input hash are recorded already is
skipped. Two imports may run at once: a row the other one recorded first (an exam, series or
instance) makes this one look again, and find the file imported or join that exam; an output
name the other one took first makes this one take the next (output paths are unique). The
scratch folder a killed run left is removed by the next import of the trial (import_scratch).
A write into the data folder that fails, or a full database, is the installation's problem, not
the file's: it stops the run with a message saying where, and nothing is quarantined for it.

Originals are kept under ``<data>/originals/<trial_id>/`` (mode 0700), named by their
SHA-256; outputs under ``<data>/exams/<trial_id>/<exam_id>/``. Nothing named or written here
carries PHI: names are hashes and numbers, reasons name what is wrong, never a value.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydicom.dataset import Dataset
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from trialship import __version__
from trialship.crypto import Vault
from trialship.deid import (
    DeidContext,
    DeidReport,
    Profile,
    ProfileError,
    applied_option_names,
    deidentify,
    forget_cached_values,
    make_context,
    profile_hash,
)
from trialship.deid.elements import text_value
from trialship.deid.receipt import build_receipt, sign_receipt
from trialship.errors import Conflict, TrialshipError, ValidationError
from trialship.intake.dicom_stream import (
    UnreadableFile,
    read_error_cause,
    read_instance,
    write_instance,
)
from trialship.intake.header_values import dicom_date, integer, text, without_validation
from trialship.intake.output_file import OutputFile
from trialship.intake.sources import (
    SourceItem,
    SourceRejection,
    ZipEntryTooLarge,
    ZipLimits,
    iter_sources,
    local_file,
)
from trialship.registry.imaging import (
    AttributeReport,
    Instance,
    KeyEntry,
    QuarantinedFile,
    Series,
)
from trialship.registry.models import (
    Exam,
    ExamState,
    Job,
    Subject,
    SubjectIdentifier,
    TimePoint,
    Trial,
)
from trialship.schedule import visit_window
from trialship.services import audit, import_scratch
from trialship.services.authz import Actor, Capability, require
from trialship.services.subjects import subject_by_code
from trialship.services.timepoints import list_timepoints, timepoint_by_code
from trialship.services.trial_profile import trial_profile

ORIGINALS_DIR = "originals"
EXAMS_DIR = "exams"
SCRATCH_DIR = ".import-scratch"
CHUNK = 1 << 20


class Status:
    IMPORTED = "imported"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one input. `label` is the caller's own path (shown to them, never
    stored); `reason` names the problem without quoting any value."""

    label: str
    status: str
    reason: str = ""
    exam_pk: int | None = None


@dataclass
class ImportSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    exam_pks: set[int] = field(default_factory=set)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def quarantined(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == Status.QUARANTINED]

    def stopped(self, problem: str) -> str:
        """The message of a run that `problem` stopped: where, what to do, how far it came."""
        done = self.count(Status.IMPORTED) + self.count(Status.SKIPPED)
        return f"{problem}; {done} file(s) were imported, the rest will be on the re-run"

    def line(self) -> str:
        return (
            f"{len(self.outcomes)} file(s): {self.count(Status.IMPORTED)} imported, "
            f"{self.count(Status.SKIPPED)} already imported, "
            f"{self.count(Status.QUARANTINED)} quarantined; {len(self.exam_pks)} exam(s)"
        )


@dataclass(frozen=True)
class Position:
    """Where an input was among an import's inputs, never by its name (names may identify a
    patient): its item, counted from 1 as the job counts the inputs done, and for an entry of a
    zip its place in the zip's directory, counted from 1 as the labels count entries."""

    item: int
    zip_entry: int | None = None

    @classmethod
    def of(cls, item: int, entry: SourceItem | SourceRejection) -> Position:
        return cls(item, None if entry.entry is None else entry.entry + 1)


class _Quarantine(Exception):
    """Stop importing this file; the message is the reason (never PHI)."""


class _CannotStore(Exception):
    """Stop the run: the data folder (or the database) refused a write. The installation's
    problem, not the file's: nothing is quarantined for it. The message says where and what to
    do."""


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full


def _folder_problem(data_dir: Path, exc: OSError) -> _CannotStore:
    cause = (exc.strerror or type(exc).__name__).lower()
    if exc.errno in _NO_SPACE:
        return _CannotStore(
            f"the data folder {data_dir} is full ({cause}): free space and import again"
        )
    return _CannotStore(
        f"cannot write into the data folder {data_dir} ({cause}): correct that and import again"
    )


@contextmanager
def _writing(data_dir: Path) -> Iterator[None]:
    """Around a write into the data folder: an OSError there stops the run (_CannotStore)."""
    try:
        yield
    except OSError as exc:
        raise _folder_problem(data_dir, exc) from exc


def _remove(path: Path) -> None:
    """Remove a partial (or rolled back) file: failing to must not hide why it is removed."""
    with suppress(OSError):
        path.unlink()


def _database_full(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_FULL)  # (extended codes keep it in the low byte)
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate == _DISK_FULL_SQLSTATE


def _database_place(session: Session, data_dir: Path) -> str:
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        return "the database"
    path = Path(url.database).absolute()
    return (
        f"the data folder {data_dir}" if path.is_relative_to(data_dir) else f"the database {path}"
    )


# -- time points ---------------------------------------------------------------------------


def choose_timepoint(
    timepoints: Sequence[TimePoint], baseline: dt.date | None, study_date: dt.date | None
) -> tuple[TimePoint | None, bool]:
    """The time point of an exam on `study_date` and whether that is certain.

    Exactly one visit window holds the date: that one, confirmed. None or several: the time
    point with the nearest target day, unconfirmed (a coordinator confirms it).
    """
    if not timepoints or baseline is None or study_date is None:
        return None, False
    windows = [
        (tp, visit_window(baseline, tp.day_offset, tp.window_minus, tp.window_plus))
        for tp in timepoints
    ]
    holding = [tp for tp, window in windows if window.contains(study_date)]
    if len(holding) == 1:
        return holding[0], True
    candidates = [(tp, w) for tp, w in windows if tp in holding] if holding else windows
    nearest = min(candidates, key=lambda pair: abs((pair[1].target - study_date).days))
    return nearest[0], False


# -- helpers -------------------------------------------------------------------------------


def restricted_folder(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 on the folders created."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True)
class _Header:
    """The original values one file is matched and recorded by (kept in memory only)."""

    patient_id: str
    issuer: str
    accession: str
    study_uid: str
    series_uid: str
    sop_uid: str
    study_date: dt.date | None

    @classmethod
    def of(cls, ds: Dataset) -> _Header:
        # Read without converting the elements: the engine keeps (and writes) raw ones fastest.
        return cls(
            patient_id=text_value(ds, "PatientID"),
            issuer=text_value(ds, "IssuerOfPatientID"),
            accession=text_value(ds, "AccessionNumber"),
            study_uid=text_value(ds, "StudyInstanceUID"),
            series_uid=text_value(ds, "SeriesInstanceUID"),
            sop_uid=text_value(ds, "SOPInstanceUID"),
            study_date=dicom_date(text_value(ds, "StudyDate")),
        )


def deid_context(
    vault: Vault, profile: Profile, subject: Subject, timepoint: TimePoint | None
) -> DeidContext:
    """The engine's context from the registry: the subject's identity, site, time point, consent,
    and its decrypted original identifiers for the leak check."""
    return make_context(
        profile,
        subject_id=subject.subject_id,
        reading_id=subject.reading_id,
        site_id=subject.site.site_id if subject.site else "",
        site_name=subject.site.name if subject.site else "",
        timepoint_id=timepoint.timepoint_id if timepoint else "",
        timepoint_description=timepoint.description if timepoint else "",
        consent=subject.consent_distribution,
        known_identifiers=tuple(vault.decrypt(i.value_encrypted) for i in subject.identifiers),
    )


# -- the run -------------------------------------------------------------------------------


@dataclass
class _Run:
    session: Session
    vault: Vault
    trial: Trial
    profile: Profile
    data_dir: Path
    subject: Subject | None
    timepoint: TimePoint | None
    job: Job | None
    timepoints: list[TimePoint]
    summary: ImportSummary = field(default_factory=ImportSummary)
    changed_exams: set[int] = field(default_factory=set)
    keys: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    contexts: dict[tuple[int, int | None], DeidContext] = field(default_factory=dict)
    matches: dict[tuple[str, str], int | str] = field(default_factory=dict)
    # Rows found or made by this run, by what it looks them up by: a study's files come
    # together, and a query per file for its exam and series cost more than de-identifying
    # it. Held here (the session holds them weakly; they stay loaded across commits) and
    # dropped with any rollback (a row made since the last commit may be gone).
    exams: dict[str, Exam] = field(default_factory=dict)
    series: dict[tuple[int, str], Series] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)
    """Attribute reports by the SHA-256 of their entries (a series' files share one)."""
    quarantined: set[str] | None = None
    """SHA-256s of the trial's quarantined files (read once): an imported file's row is
    deleted only when there is one, not by a DELETE statement per file."""
    placed: list[Path] = field(default_factory=list)
    """Outputs moved into place since the last commit: removed if their rows roll back."""
    position: Position = field(default_factory=lambda: Position(item=1))
    """Where the input being imported is among the run's (what its quarantine row says)."""
    writing: str | None = None
    """The output path the file being imported was given, once it has one."""
    token: str = field(default_factory=import_scratch.owned_name)
    """The run's scratch folder, named for its process (see import_scratch)."""

    @property
    def scratch(self) -> Path:
        # One folder a run: another import of the trial running at once removes only its own.
        return self.data_dir / ORIGINALS_DIR / str(self.trial.id) / SCRATCH_DIR / self.token

    # -- the transaction --

    def commit(self) -> None:
        self.session.commit()
        self.placed.clear()

    def rollback(self) -> None:
        """Roll back the file's work: its rows, the outputs it placed, and what the run holds
        of rows that may be gone (or, after another import's commit, stale)."""
        # The outputs first: while this transaction holds their rows, no other import can
        # record (and place) a file at one of their paths, which removing them after would
        # take with them.
        for path in self.placed:
            _remove(path)
        self.placed.clear()
        self.session.rollback()
        self.keys.clear()
        self.reports.clear()
        self.exams.clear()
        self.series.clear()

    def storage_problem(self, exc: BaseException) -> _CannotStore | None:
        """What `exc` means when the installation refused to store (else None): a disk or quota
        full anywhere, a full database, a write into the run's scratch folder."""
        if isinstance(exc, _CannotStore):
            return exc
        if isinstance(exc, OSError) and (
            exc.errno in _NO_SPACE
            or (exc.filename and Path(os.fsdecode(exc.filename)).is_relative_to(self.scratch))
        ):
            return _folder_problem(self.data_dir, exc)
        if _database_full(exc):
            place = _database_place(self.session, self.data_dir)
            return _CannotStore(
                f"{place} is full (the database or disk is full): free space and import again"
            )
        return None

    # -- storing the original --

    def store_original(self, path: Path) -> tuple[str, int, str]:
        """Copy `path` into the originals area; returns (sha256, size, relative path).

        Reading `path` may fail for the file alone; writing the copy stops the run."""
        with _writing(self.data_dir):
            folder = restricted_folder(self.data_dir / ORIGINALS_DIR / str(self.trial.id))
        partial = folder / f".{uuid.uuid4().hex}.part"
        hasher, size = hashlib.sha256(), 0
        try:
            with path.open("rb") as source:
                with _writing(self.data_dir):
                    out = partial.open("wb")
                try:
                    for chunk in iter(lambda: source.read(CHUNK), b""):
                        hasher.update(chunk)
                        size += len(chunk)
                        with _writing(self.data_dir):
                            out.write(chunk)
                finally:
                    with _writing(self.data_dir):
                        out.close()
            sha = hasher.hexdigest()
            relative = Path(ORIGINALS_DIR) / str(self.trial.id) / sha[:2] / f"{sha}.dcm"
            with _writing(self.data_dir):
                restricted_folder((self.data_dir / relative).parent)
                os.replace(partial, self.data_dir / relative)
        finally:
            _remove(partial)
        return sha, size, relative.as_posix()

    # -- outcomes --

    def quarantine(
        self, label: str, reason: str, *, sha: str, size: int = 0, stored: str = ""
    ) -> FileOutcome:
        self.rollback()
        seen = self.session.execute(
            select(QuarantinedFile.id, QuarantinedFile.stored_path).where(
                QuarantinedFile.trial_id == self.trial.id,
                QuarantinedFile.sha256 == sha,
                QuarantinedFile.reason == reason,
            )
        ).first()
        if seen is not None and stored and not seen.stored_path:
            # Its original was purged (retention) and has just been stored again: kept with
            # the row for another period (as an imported instance's is), never orphaned.
            self.session.execute(
                update(QuarantinedFile)
                .where(QuarantinedFile.id == seen.id)
                .values(stored_path=stored)
            )
        elif seen is None:
            self.session.add(
                QuarantinedFile(
                    trial_id=self.trial.id,
                    job_id=self.job.id if self.job else None,
                    stored_path=stored,
                    sha256=sha,
                    size=size,
                    reason=reason,
                    item=self.position.item,
                    zip_entry=self.position.zip_entry,
                )
            )
        self.quarantined_sha256s().add(sha)
        return FileOutcome(label, Status.QUARANTINED, reason)

    def quarantined_sha256s(self) -> set[str]:
        if self.quarantined is None:
            self.quarantined = set(
                self.session.scalars(
                    select(QuarantinedFile.sha256).where(QuarantinedFile.trial_id == self.trial.id)
                )
            )
        return self.quarantined

    def clear_quarantine(self, key: str) -> None:
        """Delete the trial's quarantine rows of `key` (a content SHA-256, or the keyed hash
        of a label a file was refused by before it was stored): that input is imported now."""
        quarantined = self.quarantined_sha256s()
        if key in quarantined:
            self.session.execute(
                delete(QuarantinedFile).where(
                    QuarantinedFile.trial_id == self.trial.id, QuarantinedFile.sha256 == key
                )
            )
            quarantined.discard(key)

    # -- matching --

    def match_subject(self, header: _Header) -> Subject:
        if self.subject is not None:
            return self.subject
        if not header.patient_id:
            raise _Quarantine("no patient ID to match a subject by")
        value_hash = self.vault.keyed_hash(header.patient_id)
        issuer_hash = self.vault.keyed_hash(header.issuer) if header.issuer else ""
        # A study's files share a patient: one query per patient and run, not per file (by the
        # keyed hashes: the run keeps no patient ID). An identifier registered while the run
        # goes on counts from the next run: importing the quarantined files again matches them.
        key = (value_hash, issuer_hash)
        found = self.matches.get(key)
        if found is None:
            found = self.matches[key] = self._find_subject(value_hash, issuer_hash)
        if isinstance(found, str):
            raise _Quarantine(found)
        subject = self.session.get(Subject, found)
        assert subject is not None  # (subjects are not deleted while their trial imports)
        return subject

    def _find_subject(self, value_hash: str, issuer_hash: str) -> int | str:
        """The id of the one subject with this patient ID (and issuer), or why there is none."""
        issuers = [self.vault.keyed_hash("")]
        if issuer_hash:
            issuers.append(issuer_hash)
        subjects = list(
            self.session.scalars(
                select(Subject.id)
                .join(SubjectIdentifier, SubjectIdentifier.subject_pk == Subject.id)
                .where(
                    SubjectIdentifier.trial_id == self.trial.id,
                    SubjectIdentifier.value_hash == value_hash,
                    or_(*(SubjectIdentifier.issuer_hash == issuer for issuer in issuers)),
                )
                .distinct()
            )
        )
        if not subjects:
            return "no subject of the trial has this patient ID (and issuer)"
        if len(subjects) > 1:
            return "the patient ID matches several subjects of the trial"
        return subjects[0]

    def context(self, subject: Subject, timepoint: TimePoint | None) -> DeidContext:
        """The engine's context of a subject at a time point, made once a run: decrypting the
        subject's identifiers and compiling their patterns took 0.8 ms a file. (A subject
        edited while the run goes on is seen by the next run.)"""
        key = (subject.id, timepoint.id if timepoint else None)
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = self.contexts[key] = deid_context(self.vault, self.profile, subject, timepoint)
        return ctx

    def exam_for(self, header: _Header, subject: Subject) -> tuple[Exam | None, str]:
        """The exam this study joins (None: a new one) and its study hash."""
        if not header.study_uid:
            raise _Quarantine("no Study Instance UID")
        study_hash = self.vault.keyed_hash(header.study_uid)
        exam = self.exams.get(study_hash)
        if exam is None:
            exam = self.session.scalar(
                select(Exam).where(
                    Exam.trial_id == self.trial.id, Exam.study_uid_hash == study_hash
                )
            )
        if exam is not None and exam.subject_pk != subject.id:
            raise _Quarantine("the study was imported for another subject")
        return exam, study_hash

    # -- one file --

    def import_item(self, item: SourceItem) -> FileOutcome:
        with local_file(item, self.scratch) as path:
            sha, size, stored = self.store_original(path)
        try:
            return self.import_stored(item.label, sha, size, stored)
        except _CannotStore:
            raise
        except (_Quarantine, UnreadableFile) as exc:
            reason = str(exc)
        except ProfileError as exc:  # a replace template too long for this subject's values
            reason = f"the trial's profile: {exc}"
        except Exception as exc:  # the edge of one stored file: quarantine it with its original
            if (stop := self.storage_problem(exc)) is not None:
                raise stop from exc
            reason = f"cannot import: {read_error_cause(exc)}"
        return self.quarantine(item.label, reason, sha=sha, size=size, stored=stored)

    def import_stored(self, label: str, sha: str, size: int, stored: str) -> FileOutcome:
        """`import_original`, looking again when another import recorded a row this file needs
        since this one looked (the database refuses this file's row)."""
        looked_again = False
        while True:
            try:
                return self.import_original(label, sha, size, stored)
            except IntegrityError:
                given = self.writing
                self.rollback()  # (its output was not moved into place: no file is left)
                if given is not None and self.path_recorded(given):
                    # Both looked before either recorded it: the other import has the output
                    # name, this file takes the next free one. (Each time, the other import
                    # recorded a file: this ends.)
                    continue
                if looked_again:
                    raise
                # Its exam, series, instance or a key entry: what the run holds is stale. Once
                # more, from the stored original: the file is found imported, or joins that
                # exam.
                looked_again = True

    def path_recorded(self, relative: str) -> bool:
        return self.session.scalar(select(Instance.id).where(Instance.path == relative)) is not None

    def import_original(self, label: str, sha: str, size: int, stored: str) -> FileOutcome:
        self.writing = None
        original = self.data_dir / stored
        with original.open("rb") as source:
            instance = read_instance(source, size)
            ds = instance.dataset
            header = _Header.of(ds)
            sop_hash = self.vault.keyed_hash(header.sop_uid)
            # Two columns, not the ORM object: this runs for every file, and most are new.
            recorded = self.session.execute(
                select(Instance.id, Instance.input_sha256, Instance.original_path, Series.exam_pk)
                .join(Series)
                .where(Instance.trial_id == self.trial.id, Instance.original_sop_hash == sop_hash)
            ).first()
            if recorded is not None:
                instance_pk, recorded_sha, kept, exam_pk = recorded
                if recorded_sha != sha:
                    raise _Quarantine(
                        "same SOP Instance UID as an imported instance, with different content"
                    )
                if not kept:
                    # Its original was purged (retention): the copy just stored is kept for
                    # re-processing again, for another retention period (purge_originals).
                    self.session.execute(
                        update(Instance)
                        .where(Instance.id == instance_pk)
                        .values(original_path=stored)
                    )
                state = self.session.scalar(select(Exam.state).where(Exam.id == exam_pk))
                if state != ExamState.DEIDENTIFIED:
                    self.changed_exams.add(exam_pk)  # a run killed before its receipt
                # (e.g. refused while another import recorded it)
                self.clear_quarantine(sha)
                return FileOutcome(label, Status.SKIPPED, "already imported", exam_pk)
            subject = self.match_subject(header)
            exam, study_hash = self.exam_for(header, subject)
            if exam is not None:
                timepoint, confirmed = exam.timepoint, exam.timepoint_confirmed
            elif self.timepoint is not None:
                timepoint, confirmed = self.timepoint, True
            else:
                timepoint, confirmed = choose_timepoint(
                    self.timepoints, subject.baseline_date, header.study_date
                )
            result = deidentify(ds, self.profile, self.context(subject, timepoint))
            if result.leaks:
                where = ", ".join(sorted({f"{leak.kind} in {leak.path}" for leak in result.leaks}))
                raise _Quarantine(
                    f"leak check failed: {len(result.leaks)} possible leak(s): {where}"
                )
            if exam is None:
                exam = Exam(
                    trial_id=self.trial.id,
                    subject_pk=subject.id,
                    timepoint_pk=timepoint.id if timepoint else None,
                    timepoint_confirmed=confirmed,
                    study_date=header.study_date,
                    study_uid_hash=study_hash,
                    study_instance_uid=text_value(ds, "StudyInstanceUID"),
                    modality=text_value(ds, "Modality")[:16],
                    description=text_value(ds, "StudyDescription")[:64],
                    state=ExamState.RECEIVED,
                )
                self.session.add(exam)
                self.session.flush()
            self.exams[study_hash] = exam
            relative = self.writing = self.output_path(exam, ds)
            target = self.data_dir / relative
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                # (Reading the stored original here fails for the data folder too.)
                with _writing(self.data_dir):
                    restricted_folder(target.parent)
                    with OutputFile(partial) as out:
                        input_sha, output_sha = write_instance(
                            instance, source, out, input_sha256=sha
                        )
                    out_size = partial.stat().st_size
                self.record(
                    exam,
                    ds,
                    header,
                    relative,
                    sop_hash,
                    input_sha,
                    output_sha,
                    stored,
                    result,
                    out_size=out_size,
                )
                # Written before the file is moved into place: a row the database refuses (one
                # another import recorded first) leaves no file behind. The run commits it with
                # its progress (one commit a file: each took about 1 ms).
                self.session.flush()
                with _writing(self.data_dir):
                    os.replace(partial, target)
                self.placed.append(target)
            finally:
                _remove(partial)
        return FileOutcome(label, Status.IMPORTED, "", exam.id)

    def output_path(self, exam: Exam, ds: Dataset) -> str:
        base = (
            f"{EXAMS_DIR}/{self.trial.id}/{exam.id}/S{integer(text_value(ds, 'SeriesNumber')):04d}/"
            f"I{integer(text_value(ds, 'InstanceNumber')):05d}"
        )
        relative, counter = f"{base}.dcm", 1
        # A file on disk without a row is what a killed run left: it is overwritten. (Asked of
        # the database each time, not remembered for the run: another import may be adding
        # files to the same exam.)
        while self.path_recorded(relative):
            counter += 1
            relative = f"{base}_{counter}.dcm"
        return relative

    def attribute_report(self, report: DeidReport) -> int:
        """The row of this file's attribute report, stored once per trial."""
        return attribute_report_pk(self.session, self.trial.id, report, self.reports)

    def record(
        self,
        exam: Exam,
        ds: Dataset,
        header: _Header,
        relative: str,
        sop_hash: str,
        input_sha: str,
        output_sha: str,
        stored: str,
        result: Any,
        *,
        out_size: int,
    ) -> None:
        series_uid = text_value(ds, "SeriesInstanceUID")
        series = self.series.get((exam.id, series_uid))
        if series is None:
            series = self.session.scalar(
                select(Series).where(
                    Series.exam_pk == exam.id, Series.series_instance_uid == series_uid
                )
            )
        if series is None:
            series = Series(
                exam_pk=exam.id,
                series_instance_uid=series_uid,
                series_number=integer(text_value(ds, "SeriesNumber")) or None,
                modality=text_value(ds, "Modality")[:16],
                description=text_value(ds, "SeriesDescription")[:64],
            )
            self.session.add(series)
            self.session.flush()
        self.series[(exam.id, series_uid)] = series
        meta = ds.file_meta
        self.session.add(
            Instance(
                trial_id=self.trial.id,
                series_pk=series.id,
                sop_instance_uid=text_value(ds, "SOPInstanceUID"),
                sop_class_uid=text_value(ds, "SOPClassUID"),
                transfer_syntax_uid=text(meta.get("TransferSyntaxUID")) if meta else "",
                instance_number=integer(text_value(ds, "InstanceNumber")) or None,
                original_sop_hash=sop_hash,
                input_sha256=input_sha,
                output_sha256=output_sha,
                size=out_size,
                path=relative,
                original_path=stored,
                attribute_report_pk=self.attribute_report(result.report),
            )
        )
        self.add_keys(
            exam,
            [
                ("patient_id", header.patient_id, text_value(ds, "PatientID")),
                ("accession_number", header.accession, text_value(ds, "AccessionNumber")),
                ("study_instance_uid", header.study_uid, text_value(ds, "StudyInstanceUID")),
                ("series_instance_uid", header.series_uid, series_uid),
                ("sop_instance_uid", header.sop_uid, text_value(ds, "SOPInstanceUID")),
            ],
        )
        # Counted by the database: another import may be adding files to the same exam (a
        # count read by this run may be stale).
        exam.file_count = Exam.file_count + 1
        exam.total_bytes = Exam.total_bytes + out_size
        if result.needs_pixel_review:
            exam.needs_pixel_review = True
            exam.pixel_reviewed_at = None  # new files to review
        if not exam.modality:
            exam.modality = series.modality
        exam.state = ExamState.RECEIVED
        flag_modified(exam, "state")  # (written even if another import signed it since)
        self.clear_quarantine(input_sha)
        self.changed_exams.add(exam.id)

    def add_keys(self, exam: Exam, entries: list[tuple[str, str, str]]) -> None:
        if exam.id not in self.keys:
            self.keys[exam.id] = {
                (kind, replacement)
                for kind, replacement in self.session.execute(
                    select(KeyEntry.kind, KeyEntry.replacement).where(KeyEntry.exam_pk == exam.id)
                )
            }
        seen = self.keys[exam.id]
        for kind, original, replacement in entries:
            if not original or (kind, replacement[:128]) in seen:
                continue
            seen.add((kind, replacement[:128]))
            self.session.add(
                KeyEntry(
                    trial_id=self.trial.id,
                    exam_pk=exam.id,
                    kind=kind,
                    original_encrypted=self.vault.encrypt(original),
                    replacement=replacement[:128],
                )
            )


# -- receipts ------------------------------------------------------------------------------


def exam_folder(data_dir: Path, exam: Exam) -> Path:
    return data_dir / EXAMS_DIR / str(exam.trial_id) / str(exam.id)


def sign_exam_receipt(
    session: Session,
    exam: Exam,
    profile: Profile,
    signing_key: Ed25519PrivateKey,
    now: dt.datetime,
) -> dict[str, Any]:
    """Build, sign and store the exam's receipt over all of its instances."""
    prefix = f"{EXAMS_DIR}/{exam.trial_id}/{exam.id}/"
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for path, input_sha, output_sha in session.execute(
        select(Instance.path, Instance.input_sha256, Instance.output_sha256)
        .join(Series, Series.id == Instance.series_pk)
        .where(Series.exam_pk == exam.id)
    ):
        name = path.removeprefix(prefix)
        inputs[name], outputs[name] = input_sha, output_sha
    subject = exam.subject
    payload = build_receipt(
        kind="deidentification",
        inputs=inputs,
        outputs=outputs,
        profile_name=profile.name,
        profile_hash=profile_hash(profile),
        options=applied_option_names(profile),
        tool_version=__version__,
        created_at=now,
        extra={
            "exam": exam.id,
            "protocol_id": profile.trial.protocol_id,
            "subject_id": subject.subject_id,
            "site_id": subject.site.site_id if subject.site else "",
            "timepoint_id": exam.timepoint.timepoint_id if exam.timepoint else "",
            "study_instance_uid": exam.study_instance_uid,
        },
    )
    document = sign_receipt(payload, signing_key)
    exam.receipt = document
    exam.state = ExamState.DEIDENTIFIED
    return document


def redeidentify_exam(
    session: Session,
    vault: Vault,
    exam: Exam,
    *,
    data_dir: Path,
    signing_key: Ed25519PrivateKey,
    now: dt.datetime,
) -> None:
    """De-identify the exam's files again from their originals (after its time point changed),
    replacing the outputs in place and signing a new receipt. All files, or none: raises
    Conflict when an original is gone or fails the leak check (the outputs stay as they were)."""
    profile = trial_profile(vault, exam.subject.trial)
    ctx = deid_context(vault, profile, exam.subject, exam.timepoint)
    instances = list(
        session.scalars(
            select(Instance)
            .join(Series, Series.id == Instance.series_pk)
            .where(Series.exam_pk == exam.id)
            .order_by(Instance.id)
        )
    )
    written: list[tuple[Instance, Path, str]] = []
    reports: dict[int, DeidReport] = {}
    # A replace template may hold the time point: the rows show what the files now say.
    descriptions: dict[int | None, str] = {}
    try:
        with without_validation():
            for row in instances:
                original = data_dir / row.original_path if row.original_path else None
                if original is None or not original.is_file():
                    raise Conflict(
                        "the originals of this exam are gone (retention): import it again to "
                        "change its time point"
                    )
                with original.open("rb") as source:
                    parsed = read_instance(source, original.stat().st_size)
                    result = deidentify(parsed.dataset, profile, ctx)
                    if result.leaks:
                        raise Conflict("an instance fails the leak check: nothing was changed")
                    descriptions.setdefault(None, text_value(result.dataset, "StudyDescription"))
                    descriptions.setdefault(
                        row.series_pk, text_value(result.dataset, "SeriesDescription")
                    )
                    target = data_dir / row.path
                    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
                    with OutputFile(partial) as out:
                        _, output_sha = write_instance(parsed, source, out)
                written.append((row, partial, output_sha))
                reports[row.id] = result.report
    except BaseException:
        for _, partial, _ in written:
            partial.unlink(missing_ok=True)
        raise
    finally:
        forget_cached_values()  # no original value outlives the run in this process
    for row, partial, output_sha in written:
        target = data_dir / row.path
        os.replace(partial, target)
        exam.total_bytes += target.stat().st_size - row.size
        row.output_sha256, row.size = output_sha, target.stat().st_size
    known: dict[str, int] = {}
    for row, _, _ in written:
        row.attribute_report_pk = attribute_report_pk(session, row.trial_id, reports[row.id], known)
    for series_pk, description in descriptions.items():
        owner = exam if series_pk is None else session.get(Series, series_pk)
        if owner is not None:
            owner.description = description[:64]
    sign_exam_receipt(session, exam, profile, signing_key, now)


def attribute_report_pk(
    session: Session, trial_id: int, report: DeidReport, known: dict[str, int] | None = None
) -> int:
    """The AttributeReport row holding `report`'s entries for the trial (made if new)."""
    entries = json.dumps([entry.to_dict() for entry in report.entries], separators=(",", ":"))
    digest = hashlib.sha256(entries.encode("utf-8")).hexdigest()
    found = known.get(digest) if known is not None else None
    if found is None:
        found = session.scalar(
            select(AttributeReport.id).where(
                AttributeReport.trial_id == trial_id, AttributeReport.sha256 == digest
            )
        )
        if found is None:
            row = AttributeReport(trial_id=trial_id, sha256=digest, entries=entries)
            session.add(row)
            session.flush()
            found = row.id
        if known is not None:
            known[digest] = found
    return found


# -- the use case --------------------------------------------------------------------------


def import_exams(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    sources: Sequence[Path],
    *,
    data_dir: Path,
    signing_key: Ed25519PrivateKey,
    today: dt.date,
    now: dt.datetime,
    subject_id: str = "",
    timepoint_id: str = "",
    job: Job | None = None,
    progress: Callable[[FileOutcome, int, int], None] | None = None,
    zip_limits: ZipLimits | None = None,
) -> ImportSummary:
    """Import every file under `sources` (files, folders, zips) into `trial`.

    `subject_id` (with an optional `timepoint_id`) assigns every file to that subject instead of
    matching by the hashed original patient identifiers. Commits after each file; `job`, when
    given, records done/total as it goes. `progress(outcome, done, total)` after each input.
    """
    require(session, actor, trial, Capability.REGISTRY, today)
    subject = subject_by_code(session, trial, subject_id) if subject_id else None
    timepoint = timepoint_by_code(session, trial, timepoint_id) if timepoint_id else None
    if timepoint is not None and subject is None:
        raise ValidationError("a time point is given only with a subject", field="timepoint_id")
    profile = trial_profile(vault, trial)  # makes the trial's secret on first use
    session.commit()
    run = _Run(
        session=session,
        vault=vault,
        trial=trial,
        profile=profile,
        data_dir=Path(data_dir).absolute(),
        subject=subject,
        timepoint=timepoint,
        job=job,
        timepoints=list_timepoints(session, trial),
    )
    # What killed imports of the trial left (compared with the files' times: the clock's now).
    import_scratch.remove_stale(run.scratch.parent, now=time.time(), keep=run.token)
    entries = list(iter_sources(sources, zip_limits))
    if job is not None:
        job.total, job.done = len(entries), 0
        session.commit()
    try:
        with without_validation():
            for done, entry in enumerate(entries, start=1):
                run.position = Position.of(done, entry)
                outcome = _import_entry(run, entry)
                run.summary.outcomes.append(outcome)
                if outcome.exam_pk is not None:
                    run.summary.exam_pks.add(outcome.exam_pk)
                if job is not None:
                    job.done = done
                    job.message = run.summary.line()
                run.commit()
                if progress is not None:
                    progress(outcome, done, len(entries))
        for exam_pk in sorted(run.changed_exams):
            exam = session.get(Exam, exam_pk)
            if exam is not None:
                sign_exam_receipt(session, exam, profile, signing_key, now)
        session.commit()
    except Exception as exc:
        run.rollback()  # (an uncommitted file's output goes with its rows)
        if (stop := run.storage_problem(exc)) is None:
            raise
        # The files done are committed; a re-run skips them and signs their exams' receipts.
        raise TrialshipError(run.summary.stopped(str(stop))) from exc
    finally:
        shutil.rmtree(run.scratch, ignore_errors=True)
        forget_cached_values()  # no original value outlives the run in this process
    summary = run.summary
    audit.record(
        session,
        actor,
        "exam.import",
        object_type="trial",
        object_id=trial.id,
        trial_id=trial.id,
        details={
            "files": len(summary.outcomes),
            "imported": summary.count(Status.IMPORTED),
            "skipped": summary.count(Status.SKIPPED),
            "quarantined": summary.count(Status.QUARANTINED),
            "exams": sorted(summary.exam_pks),
            "job": job.id if job else None,
        },
    )
    session.commit()
    return summary


def _import_entry(run: _Run, entry: SourceItem | SourceRejection) -> FileOutcome:
    if isinstance(entry, SourceRejection):
        # Nothing stored: the input key is a keyed hash of what identifies it (names may hold
        # PHI), so that the same zip uploaded again quarantines nothing new.
        identity = entry.identity or entry.label
        return run.quarantine(entry.label, entry.reason, sha=run.vault.keyed_hash(identity))
    try:
        outcome = run.import_item(entry)
    except _CannotStore:
        raise
    except ZipEntryTooLarge as exc:
        return run.quarantine(entry.label, str(exc), sha=run.vault.keyed_hash(entry.label))
    except Exception as exc:  # the edge of one file: quarantine it, keep the import going
        # (unless the installation refused to store it: a full disk stops the run)
        if (stop := run.storage_problem(exc)) is not None:
            raise stop from exc
        if isinstance(exc, OSError):
            reason = f"cannot read: {exc.strerror}"
        else:
            reason = f"cannot import: {read_error_cause(exc)}"
        return run.quarantine(entry.label, reason, sha=run.vault.keyed_hash(entry.label))
    if run.quarantined_sha256s():
        # Refused by its name before (unreadable then): imported now.
        run.clear_quarantine(run.vault.keyed_hash(entry.label))
    return outcome
