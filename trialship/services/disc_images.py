"""A disc set's images and labels, built in a child process of their own.

A registry build runs inside a long-lived process: the server with its embedded worker, a
queue worker, or the CLI. That process holds the web app, SQLAlchemy and the session (a full
DVD of 40,000 files peaked at 260 MB in it), and a process does not give back to the system
what a build's many small objects took. So the headers are read and the images written in a
spawned child (not forked: it would inherit, and count, the parent's memory), which imports
only the media modules, as `trialship media build` does. The parent keeps the registry: it
sends what each exam is and where its files are, passes the child's progress on (on its own
thread: a job's progress writes to its session) and receives what each disc became.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from trialship.errors import TrialshipError
from trialship.labels import LabelTemplate
from trialship.media.capacity import Medium
from trialship.media.errors import SourceChangedError
from trialship.media.planning import PlannedDisc
from trialship.services import media_build as mb

Report = Callable[[int, int, str], None]
"""(done, total, what is being done): the set's progress, in steps of _STEPS_PER_DISC."""

_STEPS_PER_DISC = 1000
_REPORT_EVERY = 0.1  # seconds between progress messages from the child


@dataclass(frozen=True)
class ExamFiles:
    """An exam as the registry knows it, and its files with the SHA-256 each was imported
    with (the image's read-back compares with it). `modality` and `site` stand in where
    the headers name none."""

    key: str
    subject: str
    timepoint: str
    date: str
    modality: str
    description: str
    site: str
    paths: tuple[str, ...]
    sha256s: tuple[str, ...]


@dataclass(frozen=True)
class ImageOrder:
    """Every disc of a plan, to be written into `folder` with File-set IDs from `prefix`,
    dated `timestamp` (a rebuild gives the same bytes)."""

    discs: tuple[PlannedDisc, ...]
    exams: tuple[ExamFiles, ...]
    folder: Path
    prefix: str
    template: LabelTemplate
    timestamp: float


@dataclass(frozen=True)
class BuiltImage:
    """What the registry keeps of a `media_build.BuiltDiscRecord`: not its exams' files nor
    its hashes, which would carry the build's memory back into the registry's process."""

    index: int
    medium: Medium
    disc_id: str
    iso: Path
    label: Path
    image_bytes: int
    sha256: str
    manifest_sha256: str
    exam_keys: tuple[str, ...]


def build_images(order: ImageOrder, report: Report) -> list[BuiltImage]:
    """Build every disc of `order` in a child process; `report` sees its progress. Raises
    TrialshipError with the child's message (SourceChangedError for a changed file), or when the
    child ends without a result (killed, out of memory)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(order, sender), name="trialship-disc-images", daemon=True
    )
    child.start()
    sender.close()  # the child's end only: reading then ends when the child does
    try:
        while True:
            try:
                message: tuple[Any, ...] = receiver.recv()
            except EOFError:
                child.join()
                raise TrialshipError(
                    f"the process writing the disc images ended without a result "
                    f"(exit code {child.exitcode})"
                ) from None
            kind, *rest = message
            if kind == "progress":
                report(*rest)
            elif kind == "done":
                built: list[BuiltImage] = rest[0]
                return built
            elif kind == "changed":
                raise SourceChangedError(rest[0], path=rest[1])
            elif kind == "failed":
                raise TrialshipError(rest[0])
            else:  # "crashed": a bug, not bad input; its traceback says where
                raise RuntimeError(f"the disc image process failed:\n{rest[0]}")
    finally:
        receiver.close()
        if child.is_alive():  # the parent gave up (its progress callback raised, say)
            child.terminate()
        child.join()


def _child(order: ImageOrder, sender: Connection) -> None:
    try:
        sender.send(("done", _build(order, _Throttled(sender))))
    except TrialshipError as exc:
        cause = exc.__cause__
        if isinstance(cause, SourceChangedError):
            sender.send(("changed", str(exc), cause.path))
        else:
            sender.send(("failed", str(exc)))
    except (OSError, ValueError) as exc:
        sender.send(("failed", str(exc)))
    except BaseException:
        sender.send(("crashed", traceback.format_exc()))
    finally:
        sender.close()


class _Throttled:
    """Progress sent to the parent at most every _REPORT_EVERY seconds, and whenever what is
    being done changes (80,000 updates for a full DVD)."""

    def __init__(self, sender: Connection) -> None:
        self.sender = sender
        self.last = 0.0
        self.what = ""

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if what != self.what or now - self.last >= _REPORT_EVERY:
            self.last, self.what = now, what
            self.sender.send(("progress", done, total, what))


def _build(order: ImageOrder, report: Report) -> list[BuiltImage]:
    total = len(order.discs) * _STEPS_PER_DISC
    built = []
    with tempfile.TemporaryDirectory(dir=order.folder, prefix=".convert-") as tmp:
        exams = {
            exam.key: _media_exam(exam, Path(tmp), lambda what: report(0, total, what))
            for exam in order.exams
        }
        for planned in order.discs:
            base = (planned.index - 1) * _STEPS_PER_DISC

            def on_disc(what: str, done: int, of: int, base: int = base) -> None:
                step = _STEPS_PER_DISC * done // of if of else 0
                report(base + step, total, f"{what}: {100 * done // max(of, 1)} %")

            chosen = tuple(exams[e.exam_key] for e in planned.exams)
            record = mb.build_one_disc(
                planned,
                len(order.discs),
                chosen,
                order.folder,
                order.prefix,
                order.template,
                on_disc,
                timestamp=order.timestamp,
            )
            built.append(
                BuiltImage(
                    index=planned.index,
                    medium=record.medium,
                    disc_id=record.disc_id,
                    iso=record.iso,
                    label=record.label,
                    image_bytes=record.image_bytes,
                    sha256=record.sha256,
                    manifest_sha256=record.manifest_sha256,
                    exam_keys=tuple(e.exam_key for e in planned.exams),
                )
            )
    return built


def _media_exam(exam: ExamFiles, workdir: Path, note: Callable[[str], None]) -> mb.Exam:
    """The exam as the disc builder sees it, from its files' headers."""
    note(f"reading exam {exam.key}: {len(exam.paths)} files")
    files, skipped = mb.read_sources(
        exam.paths, workdir, recorded=dict(zip(exam.paths, exam.sha256s, strict=True))
    )
    if skipped:
        raise TrialshipError(f"exam {exam.key}: {len(skipped)} file(s) are not DICOM")
    first = files[0]
    modalities = tuple(sorted({f.entry.modality for f in files if f.entry.modality}))
    return mb.Exam(
        key=exam.key,
        study_uid=first.entry.study_instance_uid,
        subject=exam.subject,
        timepoint=exam.timepoint,
        date=exam.date,
        modalities=modalities or ((exam.modality,) if exam.modality else ()),
        description=exam.description,
        site=exam.site or first.site,
        files=tuple(files),
    )
