"""The standalone de-identification pipeline: files, folders and zips in; a de-identified tree,
a report and signed receipts out. No database.

Each input is read without its pixel data, matched to a subject, de-identified, leak-checked and
written under a temporary name; the parent process then decides its final name (in input order,
so `jobs` never changes the result) and renames it. A file that fails anywhere is rejected with
its reason and nothing of it is left in the output.

The output folder and the names in it: `deid_output`.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import ctypes
import dataclasses
import datetime as dt
import errno
import functools
import gc
import hashlib
import hmac
import io
import itertools
import json
import operator
import os
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trialship import __version__, vr
from trialship.deid import (
    DeidContext,
    Profile,
    ProfileError,
    applied_option_names,
    deidentify,
    forget_cached_values,
    make_context,
    profile_hash,
)
from trialship.deid.elements import text_value
from trialship.deid.profile import PLACEHOLDERS
from trialship.deid.receipt import build_receipt, sign_receipt
from trialship.deid.report import action_counts
from trialship.errors import ValidationError
from trialship.intake.dicom_stream import (
    UnreadableFile,
    hash_range,
    read_error_cause,
    read_instance,
    write_instance,
)
from trialship.intake.header_values import integer, skip_validation, text, without_validation
from trialship.intake.output_file import OutputFile
from trialship.intake.sources import (
    SourceItem,
    SourceRejection,
    ZipEntryTooLarge,
    ZipLimits,
    iter_sources,
    local_file,
)
from trialship.services.deid_output import (
    JOURNAL_FILE,
    RECEIPTS_DIR,
    REPORT_FILE,
    SCRATCH_PREFIX,
    UniqueNames,
    claimed_out,
    id_folder_names,
    remove_scratch,
    scratch_path,
    series_folder_names,
)

MAP_COLUMNS = (
    "patient_id",
    "subject_id",
    "site_id",
    "site_name",
    "timepoint_id",
    "timepoint_description",
    "accession_number",
)
# The VR of the attributes each value is written into (deid/trial.py): the subject ID becomes
# PatientID, PatientName and ClinicalTrialSubjectID, all of them at most 64 characters.
ASSIGNMENT_VRS = {
    "site_id": "LO",
    "site_name": "LO",
    "timepoint_id": "LO",
    "timepoint_description": "ST",
}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Assignment:
    """Who an input belongs to in the trial (one row of the map, or the --subject options)."""

    subject_id: str
    site_id: str = ""
    site_name: str = ""
    timepoint_id: str = ""
    timepoint_description: str = ""
    patient_id: str = ""
    accession_number: str = ""

    def __post_init__(self) -> None:
        # Checked here, once per subject, rather than found invalid in every file written.
        vr.subject_identifier("subject_id", self.subject_id)
        for name, value_vr in ASSIGNMENT_VRS.items():
            vr.text(name, getattr(self, name), vr=value_vr)

    def placeholders(self) -> dict[str, str]:
        """The values of a profile's replace templates (`Profile.replacements`)."""
        return {name: getattr(self, name) for name in PLACEHOLDERS}


@dataclass(frozen=True)
class SubjectMap:
    """MAP.csv: rows with an accession number match by it, the others by patient ID."""

    by_accession: Mapping[str, Assignment]
    by_patient: Mapping[str, Assignment]

    def match(self, patient_id: str, accession: str) -> Assignment | None:
        if accession and accession in self.by_accession:
            return self.by_accession[accession]
        return self.by_patient.get(patient_id) if patient_id else None

    def assignments(self) -> set[Assignment]:
        return {*self.by_accession.values(), *self.by_patient.values()}


def load_map(csv_text: str) -> SubjectMap:
    """Parse MAP.csv; raises ValidationError naming the column or line that is wrong."""
    reader = csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff")))
    missing = [column for column in MAP_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise ValidationError(f"missing column(s) {', '.join(missing)}", field="map")
    by_accession: dict[str, Assignment] = {}
    by_patient: dict[str, Assignment] = {}
    for line, row in enumerate(reader, start=2):
        values = {column: (row.get(column) or "").strip() for column in MAP_COLUMNS}
        try:
            assignment = Assignment(**values)
        except ValidationError as exc:
            raise ValidationError(f"line {line}: {exc}", field="map") from None
        if values["accession_number"]:
            key, table = values["accession_number"], by_accession
        elif values["patient_id"]:
            key, table = values["patient_id"], by_patient
        else:
            raise ValidationError(f"line {line}: needs patient_id or accession_number", field="map")
        if key in table and table[key] != assignment:
            raise ValidationError(f"line {line}: conflicts with an earlier row", field="map")
        table[key] = assignment
    return SubjectMap(by_accession, by_patient)


@dataclass(frozen=True)
class DeidRun:
    sources: tuple[Path, ...]
    out: Path
    profile: Profile
    signing_key: Ed25519PrivateKey = field(repr=False)
    assign: Assignment | None = None
    subject_map: SubjectMap | None = None
    jobs: int = 1
    created_at: dt.datetime | None = None
    zip_limits: ZipLimits = field(default_factory=ZipLimits)


@dataclass
class Outcome:
    """What happened to one input. `reason` never holds PHI values."""

    label: str
    status: str  # "deidentified" | "duplicate" | "rejected"
    output: str | None = None
    reason: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    receipt: str | None = None
    needs_pixel_review: bool = False
    report: int | None = None
    """Index of this file's attribute report in the run report's "reports" (files of a series
    mostly share one)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"input": self.label, "status": self.status}
        if self.output:
            data["output"] = self.output
        if self.reason:
            data["reason"] = self.reason
        if self.input_sha256:
            data["input_sha256"] = self.input_sha256
        if self.output_sha256:
            data["output_sha256"] = self.output_sha256
        if self.receipt:
            data["receipt"] = self.receipt
        if self.needs_pixel_review:
            data["needs_pixel_review"] = True
        if self.report is not None:
            data["report"] = self.report
        return data


@dataclass
class RunResult:
    outcomes: list[Outcome]
    receipts: list[Path]
    report: Path

    @property
    def rejected(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "rejected"]


# -- one file (runs in a worker) -----------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    index: int
    item: SourceItem


@dataclass
class _Done:
    index: int
    label: str
    reason: str | None = None
    partial: str | None = None
    input_sha256: str = ""
    output_sha256: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    series_number: int = 0
    instance_number: int = 0
    assignment: Assignment | None = None
    needs_pixel_review: bool = False
    entries: tuple[tuple[str, str, str, str, str], ...] = ()
    """The report's entries as (tag, keyword, path, action, detail): no values, no PHI."""
    input_size: int = 0
    """The input's size as listed (a stopped run's input must still be that size)."""
    stop: str | None = None
    """Why the output folder takes no more (no space left...): the run stops at this file."""


@dataclass(frozen=True)
class _Worker:
    profile: Profile
    assign: Assignment | None
    subject_map: SubjectMap | None
    out: Path
    """The output folder: each file is written there under a scratch name, then renamed."""


_STATE: dict[str, _Worker] = {}
_TOKEN: dict[int, str] = {}


def _token() -> str:
    """A random name part drawn once per process (a fresh uuid4 per file costs a getrandom
    call): with the input's index it names a scratch file no other run or worker uses."""
    pid = os.getpid()
    if pid not in _TOKEN:
        _TOKEN[pid] = uuid.uuid4().hex
    return _TOKEN[pid]


def _init_worker(worker: _Worker) -> None:
    _STATE["worker"] = worker
    _die_with_parent()
    skip_validation()
    # What the worker inherited (modules, the profile) lives as long as it does: out of the
    # collector's sight, a full collection does not walk it (nor copy its pages from the parent).
    gc.freeze()


def _die_with_parent() -> None:
    """Linux: end this worker when the run's process ends, even by SIGKILL (a worker left
    running would keep writing into the output folder, and hold its lock)."""
    # A forked worker inherits the command's SIGTERM handler, which would only fail its file.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # elsewhere the pool's own shutdown is all there is


_PR_SET_PDEATHSIG = 1


def _process(task: _Task, closing: _Closing | None = None) -> _Done:
    worker = _STATE["worker"]
    try:
        return _deidentify_one(task, worker, closing)
    except Exception as exc:  # the edge of one file: reject it, keep the run going
        return _failed(task.index, task.item.label, exc)


def _failed(index: int, label: str, exc: Exception, *, doing: str = "read") -> _Done:
    """What became of a file that raised `exc` while it was being `doing`."""
    if isinstance(exc, UnreadableFile | ZipEntryTooLarge):
        return _Done(index, label, reason=str(exc))
    if isinstance(exc, OSError):
        if exc.errno in OUT_OF_ROOM:  # the output folder's, not the file's: the run stops
            return _Done(index, label, stop=exc.strerror or str(exc))
        return _Done(index, label, reason=f"cannot {doing}: {exc.strerror or exc}")
    if isinstance(exc, ProfileError):  # (the command checks every subject's replacements first)
        return _Done(index, label, reason=f"the profile: {exc}")
    return _Done(index, label, reason=f"cannot de-identify: {read_error_cause(exc)}")


class _Closing:
    """A worker's output files, closed on a thread of their own while the next files are read.

    Closing a file writes its gathered blocks past the page cache and waits for the disk: here
    a tenth of a file's time, during which the worker's core would idle. A file counts as
    written only once it is closed: `finish` waits for every close and says which failed.

    When the disk falls behind (`_CLOSING` closes still waiting for it), the next file is
    closed at once through the page cache instead: the worker goes on, the kernel writes it
    back later. On a disk slower than the workers (275-380 MB/s on some of these machines)
    waiting would have made the run as slow as the disk.
    """

    def __init__(self, thread: ThreadPoolExecutor) -> None:
        self._thread = thread
        self._pending: collections.deque[tuple[Future[None], _Done]] = collections.deque()
        self._failed: dict[int, _Done] = {}

    def later(self, target: OutputFile, done: _Done) -> None:
        while self._pending and self._pending[0][0].done():
            self._wait()
        if len(self._pending) < _CLOSING:  # (each file being closed holds a buffer)
            self._pending.append((self._thread.submit(target.close), done))
            return
        try:
            target.close(through_cache=True)
        except Exception as exc:
            self._fail(done, exc)

    def _wait(self) -> None:
        future, done = self._pending.popleft()
        try:
            future.result()
        except Exception as exc:
            self._fail(done, exc)

    def _fail(self, done: _Done, exc: Exception) -> None:
        if done.partial:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(done.partial)
        self._failed[done.index] = _failed(done.index, done.label, exc, doing="write")

    def finish(self) -> dict[int, _Done]:
        """Wait for every close: the files that failed, by index, as they must be reported."""
        while self._pending:
            self._wait()
        return self._failed


_CLOSING = 2


def _context(profile: Profile, assignment: Assignment) -> DeidContext:
    """The (frozen) context of one assignment, built once: every file of a subject shares it."""
    try:
        return _cached_context(profile, assignment)
    except TypeError:  # a profile built by hand with an unhashable field: no cache
        return _new_context(profile, assignment)


@functools.lru_cache(maxsize=64)
def _cached_context(profile: Profile, assignment: Assignment) -> DeidContext:
    return _new_context(profile, assignment)


def _new_context(profile: Profile, assignment: Assignment) -> DeidContext:
    known = tuple(v for v in (assignment.patient_id, assignment.accession_number) if v)
    return make_context(
        profile,
        subject_id=assignment.subject_id,
        site_id=assignment.site_id,
        site_name=assignment.site_name,
        timepoint_id=assignment.timepoint_id,
        timepoint_description=assignment.timepoint_description,
        known_identifiers=known,
    )


def _deidentify_one(task: _Task, worker: _Worker, closing: _Closing | None = None) -> _Done:
    item = task.item
    done = _Done(task.index, item.label, input_size=item.size)
    with local_file(item, worker.out, prefix=SCRATCH_PREFIX) as path, path.open("rb") as source:
        stat = os.fstat(source.fileno())
        instance = read_instance(source, stat.st_size, mtime=stat.st_mtime)
        ds = instance.dataset
        assignment = worker.assign
        if assignment is None:
            assert worker.subject_map is not None
            assignment = worker.subject_map.match(
                text(ds.get("PatientID")), text(ds.get("AccessionNumber"))
            )
            if assignment is None:
                done.reason = "no row of the map matches its accession number or patient ID"
                return done
        ctx = _context(worker.profile, assignment)
        result = deidentify(ds, worker.profile, ctx)
        if result.leaks:
            where = ", ".join(sorted({f"{leak.kind} in {leak.path}" for leak in result.leaks}))
            done.reason = f"leak check failed: {len(result.leaks)} possible leak(s): {where}"
            return done
        partial = scratch_path(worker.out, task.index, _token())
        try:
            target = OutputFile(partial)
            try:
                done.input_sha256, done.output_sha256 = write_instance(instance, source, target)
            except BaseException:
                target.close(discard=True)
                raise
            if closing is None:
                target.close()
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
    done.partial = partial
    if closing is not None:
        closing.later(target, done)
    done.sop_instance_uid = text_value(ds, "SOPInstanceUID")  # (written already: no conversion)
    done.study_instance_uid = text_value(ds, "StudyInstanceUID")
    done.series_instance_uid = text_value(ds, "SeriesInstanceUID")
    done.series_number = integer(text_value(ds, "SeriesNumber"))
    done.instance_number = integer(text_value(ds, "InstanceNumber"))
    done.assignment = assignment
    done.needs_pixel_review = result.needs_pixel_review
    done.entries = tuple(map(_ROW, result.report.entries))
    return done


_ROW = operator.attrgetter("row")


# -- the run -------------------------------------------------------------------------------------


@contextmanager
def _pool(jobs: int, worker: _Worker) -> Iterator[Callable[[Iterable[_Task]], Iterator[_Done]]]:
    if jobs <= 1:
        _STATE["worker"] = worker
        # Two threads: hashing and file I/O release the GIL, so one file's pixel data is hashed
        # and copied while the next file's header is parsed. Results still come in input order.
        threads = ThreadPoolExecutor(_THREADS)
        with without_validation():
            try:
                yield lambda tasks: threads.map(_process, tasks)
            finally:
                # On an error or Ctrl-C, files not yet started are dropped, not processed.
                threads.shutdown(wait=True, cancel_futures=True)
        return
    executor = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(worker,))
    try:
        # One thread per process here: with a process per core the cores are already busy.
        yield lambda tasks: itertools.chain.from_iterable(
            executor.map(_process_chunk, chunks(iter(tasks), jobs))
        )
    finally:
        # On an error, Ctrl-C or SIGTERM, the chunks not yet started are dropped, not processed.
        executor.shutdown(wait=True, cancel_futures=True)


_THREADS = 2
MIN_CHUNK = 4
MAX_CHUNK = 32


def chunks(tasks: Iterator[_T], jobs: int) -> Iterator[list[_T]]:
    """`tasks` in order, in lists handed to the workers one at a time.

    Each list costs the parent a few wakeups of its pool threads (about 0.3 ms: with 4 files a
    list, a tenth of its CPU went there). So: one small list per worker right away (they start
    while the folder is still being listed), then one larger list each (the workers would idle
    while the rest of the folder is listed, the parent sharing their cores), then lists of up
    to `MAX_CHUNK` files, shrinking to `MIN_CHUNK` as the end nears so the workers finish
    together. A list of contiguous files keeps a patient's files together too, and with them
    what the engine remembers per patient.
    """
    for size in (MIN_CHUNK, 4 * MIN_CHUNK):
        for _ in range(jobs):
            first = list(itertools.islice(tasks, size))
            if not first:
                return
            yield first
    rest = list(tasks)
    start = 0
    while start < len(rest):
        size = min(MAX_CHUNK, max(MIN_CHUNK, (len(rest) - start) // (4 * jobs)))
        yield rest[start : start + size]
        start += size


def _process_chunk(tasks: list[_Task]) -> list[_Done]:
    with ThreadPoolExecutor(1) as thread:
        closing = _Closing(thread)
        results = [_process(task, closing) for task in tasks]
        failed = closing.finish()
    return [failed.get(done.index, done) for done in results]


@dataclass
class _Exam:
    name: str
    assignment: Assignment
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class _Collector:
    """Runs in the parent: final names, duplicates, exams; in input order."""

    def __init__(self, out: Path) -> None:
        self.out = out
        # Paths as strings: a Path per file (joined, then its parent) costs more than the rename.
        self.root = os.fspath(out)
        self.outcomes: dict[int, Outcome] = {}
        self.by_uid: dict[str, tuple[str, str]] = {}
        self.names: set[str] = set()
        self.folders: set[str] = set()
        self.unique = UniqueNames()
        self.safe: dict[Assignment, tuple[str, str]] = {}
        self.exams: dict[tuple[str, str, str], _Exam] = {}
        self.reports: dict[tuple[tuple[str, str, str, str, str], ...], int] = {}
        self.report_counts: list[dict[str, int]] = []
        """Each report's counts by action, by its index (counted once: series share one)."""
        self.study_owners: dict[str, tuple[str, str]] = {}
        """The subject (and first input) of each study written."""

    def reject(self, index: int, label: str, reason: str) -> None:
        self.outcomes[index] = Outcome(label, "rejected", reason=reason)

    def add(self, done: _Done, *, replayed: bool = False) -> Outcome:
        """Name and place one file (`replayed`: one an unfinished run placed already, named
        again so that what follows gets the names it would have had)."""
        written = done.partial is not None or replayed
        if done.reason is not None or not written or done.assignment is None:
            outcome = Outcome(done.label, "rejected", reason=done.reason or "not written")
            self.outcomes[done.index] = outcome
            return outcome
        partial = done.partial or ""
        seen = self.by_uid.get(done.sop_instance_uid)
        if seen is not None:
            first_label, first_sha = seen
            if first_sha == done.input_sha256:
                return self._not_written(
                    done, partial, "duplicate", f"identical to {first_label}: not written again"
                )
            return self._not_written(
                done,
                partial,
                "rejected",
                f"same SOP Instance UID as {first_label} with different content",
            )
        who = done.assignment
        owner = self.study_owners.setdefault(done.study_instance_uid, (who.subject_id, done.label))
        if owner[0] != who.subject_id:
            # One study, two subjects: a receiver would merge them under one Study UID.
            return self._not_written(
                done,
                partial,
                "rejected",
                f"its study holds files of another subject already ({owner[1]})",
            )
        self.by_uid[done.sop_instance_uid] = (done.label, done.input_sha256)
        subject, timepoint = self._folder_names(who)
        folder = self._series_folder(f"{subject}/{timepoint}", done)
        relative = self._name(folder, done.instance_number)
        if replayed:
            # Taken over only as the stopped run wrote it: a file cut short by a crash, or
            # replaced since, would be signed into the receipt.
            if _file_sha256(os.path.join(self.root, relative)) != done.output_sha256:
                raise ValidationError(
                    f"cannot finish the stopped run in {self.out}: {relative} is gone or not "
                    "what the run wrote; give a new or empty folder",
                    field="out",
                )
        else:
            if folder not in self.folders:
                os.makedirs(os.path.join(self.root, folder), exist_ok=True)
                self.folders.add(folder)
            os.replace(partial, os.path.join(self.root, relative))
        exam = self._exam(subject, timepoint, done.study_instance_uid, who)
        exam.inputs[relative] = done.input_sha256
        exam.outputs[relative] = done.output_sha256
        report = self.reports.setdefault(done.entries, len(self.reports))
        if report == len(self.report_counts):
            self.report_counts.append(action_counts(done.entries))
        for action, count in self.report_counts[report].items():
            exam.counts[action] = exam.counts.get(action, 0) + count
        outcome = Outcome(
            done.label,
            "deidentified",
            output=relative,
            input_sha256=done.input_sha256,
            output_sha256=done.output_sha256,
            receipt=f"{RECEIPTS_DIR}/{exam.name}.json",
            needs_pixel_review=done.needs_pixel_review,
            report=report,
        )
        self.outcomes[done.index] = outcome
        return outcome

    def _not_written(self, done: _Done, partial: str, status: str, reason: str) -> Outcome:
        """A written file that is not kept: its partial goes (a replayed one has none)."""
        if partial:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
        outcome = Outcome(done.label, status, reason=reason, input_sha256=done.input_sha256)
        self.outcomes[done.index] = outcome
        return outcome

    def _folder_names(self, who: Assignment) -> tuple[str, str]:
        names = self.safe.get(who)
        if names is None:
            subject = self.unique.name(
                "", who.subject_id, lambda: id_folder_names(who.subject_id, "SUBJECT")
            )
            timepoint = self.unique.name(
                subject, who.timepoint_id, lambda: id_folder_names(who.timepoint_id, "NO_TIMEPOINT")
            )
            names = self.safe[who] = (subject, timepoint)
        return names

    def _series_folder(self, parent: str, done: _Done) -> str:
        # One folder per series: by its UIDs (the remapped ones, as unique as the originals), not
        # by its number, which another series of the time point may share.
        series = (done.study_instance_uid, done.series_instance_uid)
        name = self.unique.name(parent, series, lambda: series_folder_names(done.series_number))
        return f"{parent}/{name}"

    def _name(self, folder: str, instance: int) -> str:
        base = f"{folder}/I{instance:05d}"
        relative, counter = f"{base}.dcm", 1
        while relative in self.names:
            counter += 1
            relative = f"{base}_{counter}.dcm"
        self.names.add(relative)
        return relative

    def _exam(self, subject: str, timepoint: str, study: str, who: Assignment) -> _Exam:
        key = (subject, timepoint, study)
        exam = self.exams.get(key)
        if exam is None:
            # Unique among the receipts: `A_B` + `C` and `A` + `B_C` would both make `A_B_C_1`.
            name = self.unique.name(
                RECEIPTS_DIR,
                key,
                lambda: (f"{subject}_{timepoint}_{n}" for n in itertools.count(1)),
            )
            exam = self.exams[key] = _Exam(name, who)
        return exam


def run_deid(run: DeidRun, *, progress: Callable[[Outcome], None] | None = None) -> RunResult:
    """De-identify every input of `run` into `run.out`; see the module docstring.

    Raises ValidationError (field "out") before anything is written when `run.out` overlaps a
    source, holds files of another run, or another run is writing into it. A run that stopped
    before its end (killed, interrupted) is finished: what it did is taken from its journal.
    """
    try:
        return _run(run, progress)
    except OSError as exc:
        if exc.errno in OUT_OF_ROOM:  # (writing the receipts, the report, the journal)
            raise OutputFull(run.out, exc.strerror or str(exc)) from None
        raise


OUT_OF_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


class OutputFull(Exception):
    """The output folder takes no more (full, over quota, read-only): the run stops there, its
    journal says what it did, and the same command finishes it once there is room."""

    def __init__(self, out: Path, why: str) -> None:
        super().__init__(
            f"cannot write into {out}: {why}; make room and run the same command again to "
            "finish the run"
        )


def _run(run: DeidRun, progress: Callable[[Outcome], None] | None) -> RunResult:
    created = run.created_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    collector = _Collector(run.out)
    key = run_key(run)
    with claimed_out(run.sources, run.out, key) as earlier:
        finished = _replay(collector, earlier)
        journal = _Journal(run.out / JOURNAL_FILE, key, resumed=bool(earlier), reports=collector)
        worker = _Worker(run.profile, run.assign, run.subject_map, run.out)
        try:
            with _pool(run.jobs, worker) as process:
                tasks = _tasks(run, collector, journal, finished, progress)
                for done in process(tasks):
                    if done.stop is not None:
                        raise OutputFull(run.out, done.stop)
                    outcome = collector.add(done)
                    journal.done(done, outcome.report)
                    if progress:
                        progress(outcome)
        finally:
            journal.close()
            remove_scratch(run.out)  # (a stopped run's files not yet renamed into the tree)
            _cached_context.cache_clear()
            forget_cached_values()  # no original value outlives the run in this process
        receipts = _write_receipts(run, collector, created)
        outcomes = [collector.outcomes[index] for index in sorted(collector.outcomes)]
        report = _write_report(run, outcomes, collector.reports, created)
        journal.path.unlink()  # (the report says it all now)
    return RunResult(outcomes=outcomes, receipts=receipts, report=report)


def _file_sha256(path: str | Path) -> str | None:
    """The file's SHA-256 (hex), or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fp:
            hash_range(fp, 0, os.fstat(fp.fileno()).st_size, digest)
    except (OSError, UnreadableFile):
        return None
    return digest.hexdigest()


def run_key(run: DeidRun) -> str:
    """What makes two runs the same run: their sources, profile (secret included, as a keyed
    hash: it is written into the output folder), subjects and limits."""
    described = json.dumps(
        {
            "sources": [os.fspath(source.resolve()) for source in run.sources],
            "profile": profile_hash(run.profile),
            "assign": dataclasses.asdict(run.assign) if run.assign else None,
            "map": repr(run.subject_map),
            "zip_limits": dataclasses.asdict(run.zip_limits),
            "version": __version__,
        },
        sort_keys=True,
    )
    secret = run.profile.uid_secret or b""
    return hmac.new(secret, described.encode("utf-8"), hashlib.sha256).hexdigest()


class _Journal:
    """What the run has done, a line a file (`deid_output.JOURNAL_FILE`): the same command
    finishes a run that stopped before its end. A file's line is written once it has its
    final name; a kill between the two leaves a file that the next run writes again."""

    def __init__(self, path: Path, key: str, *, resumed: bool, reports: _Collector) -> None:
        self.path = path
        self._fp = path.open("a", encoding="utf-8")
        self._reports = len(reports.reports)  # (those the journal holds already)
        if not resumed:
            self._write({"run": key})

    def _write(self, record: dict[str, Any]) -> None:
        self._fp.write(json.dumps(record, ensure_ascii=True) + "\n")
        self._fp.flush()  # (in the kernel's hands: a killed run loses nothing written)

    def rejected(self, index: int, label: str, reason: str) -> None:
        self._write({"kind": "rejected", "index": index, "label": label, "reason": reason})

    def done(self, done: _Done, report: int | None) -> None:
        if report is not None and report == self._reports:
            self._write({"kind": "report", "entries": [list(entry) for entry in done.entries]})
            self._reports += 1
        record = {name: getattr(done, name) for name in _JOURNALED}
        assignment = _assignment_record(done.assignment) if done.assignment else None
        self._write({"kind": "done", **record, "assignment": assignment, "report": report})

    def close(self) -> None:
        self._fp.close()


_JOURNALED = tuple(
    field.name
    for field in dataclasses.fields(_Done)
    if field.name not in ("partial", "entries", "assignment")
)
"""What the journal keeps of a file done (its report and assignment go their own ways)."""


@functools.lru_cache(maxsize=256)
def _assignment_record(assignment: Assignment) -> dict[str, Any]:
    """The assignment as the journal keeps it: without the map row's patient ID and accession
    number (the journal is in the output folder; finishing the run does not need them, they
    only told which row a file matched). Once per assignment: files of a subject share it."""
    return {**dataclasses.asdict(assignment), "patient_id": "", "accession_number": ""}


def _replay(
    collector: _Collector, records: list[dict[str, Any]]
) -> dict[int, tuple[str, int | None]]:
    """Put the stopped run's files back into `collector`, in their order (the names they were
    given follow from it); the label and size of each input it finished, by index."""
    finished: dict[int, tuple[str, int | None]] = {}
    reports: list[tuple[tuple[str, str, str, str, str], ...]] = []
    for record in records:
        kind = record.pop("kind", None)
        if kind == "report":
            reports.append(tuple(tuple(entry) for entry in record["entries"]))
        elif kind == "rejected":
            collector.reject(record["index"], record["label"], record["reason"])
            finished[record["index"]] = (record["label"], None)
        elif kind == "done":
            report, assignment = record.pop("report"), record.pop("assignment")
            done = _Done(
                **record,
                assignment=Assignment(**assignment) if assignment else None,
                entries=reports[report] if report is not None else (),
            )
            collector.add(done, replayed=True)
            finished[done.index] = (done.label, done.input_size)
    return finished


def _tasks(
    run: DeidRun,
    collector: _Collector,
    journal: _Journal,
    finished: Mapping[int, tuple[str, int | None]],
    progress: Callable[[Outcome], None] | None,
) -> Iterator[_Task]:
    """The inputs to process, as they are listed: the pool starts on the first while the rest
    of the folder is still being read. Inputs refused on sight are recorded on the way; those a
    stopped run finished are passed over (the same inputs in the same places, or refused)."""
    for index, entry in enumerate(iter_sources(run.sources, run.zip_limits)):
        if index in finished:
            label, size = finished[index]
            now = entry.size if isinstance(entry, SourceItem) else None
            if label != entry.label or (size is not None and size != now):
                raise ValidationError(
                    f"the sources changed since the run in {run.out} stopped (input {index + 1} "
                    f"was {label}, now {entry.label}"
                    + (f" of {now} bytes, not {size}" if label == entry.label else "")
                    + "): give a new or empty folder",
                    field="out",
                )
            continue
        if isinstance(entry, SourceRejection):
            collector.reject(index, entry.label, entry.reason)
            journal.rejected(index, entry.label, entry.reason)
            if progress:
                progress(collector.outcomes[index])
        else:
            yield _Task(index, entry)


def _options(profile: Profile) -> dict[str, Any]:
    return {
        "named": sorted(option.value for option in profile.options),
        "private_tags": profile.private_tags.value,
        "patient_age": profile.patient_age.value,
        "date_shift_days": list(profile.date_shift_days),
        "keep": sorted(profile.keep),
        "remove": sorted(profile.remove),
        "replace": [list(pair) for pair in profile.replace],
    }


def _write_receipts(run: DeidRun, collector: _Collector, created: dt.datetime) -> list[Path]:
    folder = run.out / RECEIPTS_DIR
    digest = profile_hash(run.profile)
    written: list[Path] = []
    for (_, _, study), exam in collector.exams.items():
        who = exam.assignment
        payload = build_receipt(
            kind="deidentification",
            inputs=exam.inputs,
            outputs=exam.outputs,
            profile_name=run.profile.name,
            profile_hash=digest,
            options=applied_option_names(run.profile),
            tool_version=__version__,
            created_at=created,
            changed_attributes=exam.counts,
            extra={
                "exam": exam.name,
                "subject_id": who.subject_id,
                "site_id": who.site_id,
                "timepoint_id": who.timepoint_id,
                "study_instance_uid": study,
                "profile_options": _options(run.profile),
            },
        )
        target = folder / f"{exam.name}.json"
        _write_json(target, sign_receipt(payload, run.signing_key))
        written.append(target)
    return written


_ENTRY_FIELDS = ("tag", "keyword", "path", "action", "detail")


def _write_report(
    run: DeidRun,
    outcomes: list[Outcome],
    reports: Mapping[tuple[tuple[str, str, str, str, str], ...], int],
    created: dt.datetime,
) -> Path:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    report = {
        "tool": {"name": "trialship", "version": __version__},
        "created_at": created.isoformat(),
        "profile": {"name": run.profile.name, "hash": profile_hash(run.profile)},
        "summary": {"inputs": len(outcomes), **dict(sorted(counts.items()))},
        "inputs": [outcome.to_dict() for outcome in outcomes],
        # What was done to each attribute of a file, by tag and path: an input's "report".
        "reports": [
            [dict(zip(_ENTRY_FIELDS, entry, strict=True)) for entry in entries]
            for entries in sorted(reports, key=reports.__getitem__)
        ],
    }
    target = run.out / REPORT_FILE
    _write_json(target, report)
    return target


def _write_json(target: Path, data: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, target)


# -- receipts ------------------------------------------------------------------------------------


def verify_receipt_files(document: Mapping[str, Any], folder: Path) -> str | None:
    """None when every output listed in the receipt is in `folder` with its hash, else why not."""

    outputs = document.get("payload", {}).get("outputs", {})
    for relative, expected in sorted(outputs.items()):
        path = folder / relative
        if ".." in Path(relative).parts or not path.is_file():
            return f"missing file {relative}"
        if _file_sha256(path) != expected:
            return f"hash mismatch for {relative}"
    return None
