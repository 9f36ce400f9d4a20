"""Build one disc image: DICOMDIR, manifest, ISO, read-back check. Folders come in as paths."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trialship.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from trialship.media.arenas import use_steady_malloc
from trialship.media.capacity import Medium
from trialship.media.dicomdir import DirEntry, write_dicomdir
from trialship.media.errors import ManifestMismatch, MediaError, SourceChangedError
from trialship.media.fileid import FileId, validate_volume_id
from trialship.media.hashing import HashPool
from trialship.media.iso import (
    Deferred,
    ImageFile,
    Placement,
    os_reason,
    part_path,
    sync_file,
    write_iso,
)
from trialship.media.manifest import (
    DICOMDIR_NAME,
    MANIFEST_NAME,
    README_NAME,
    FileStamp,
    ManifestRow,
    hash_bytes,
    hash_file,
    manifest_lines,
)
from trialship.media.verify import ReadBack, check_fits, check_read_back, follow, read_back
from trialship.media.watermark import Watermark

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# PS3.11 Annex H / STD-GEN-DVD-JPEG and -J2K (and the BD equivalents): one family per disc.
_JPEG = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70"})
_J2K = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DiscFile:
    """A DICOM file for the disc: where it is now, its File ID there, and its header keys
    (`entry`, whose own File ID, if any, is not used).
    `sha256`, when given, is what the file must hash to (the registry's record of it):
    MANIFEST.CSV lists it, and the read-back compares the image with it (a source that changed
    since fails the build: SourceChangedError). When None, the file is hashed as it is copied;
    `stamp` (taken before its header was read) then tells whether it changed in between.
    Give files in File ID order (see write_iso)."""

    src_path: str
    file_id: FileId
    entry: DirEntry
    sha256: str | None = None
    stamp: FileStamp | None = None


@dataclass(frozen=True)
class BuiltDisc:
    path: Path
    bytes: int
    sha256: str
    files: int
    manifest_sha256: str = ""
    rows: tuple[ManifestRow, ...] = field(default=(), repr=False, compare=False)
    """MANIFEST.CSV as written: DICOMDIR, README.TXT, then every file with size and SHA-256."""


def check_transfer_syntaxes(files: Sequence[DiscFile], medium: Medium) -> None:
    """Refuse files the medium's General Purpose profile does not allow (PS3.11 D.2, H.2).

    CDs (STD-GEN-CD) take Explicit VR Little Endian only; DVD and BD take it plus either the
    JPEG or the JPEG 2000 family, not both on one disc.
    """
    families: set[str] = set()
    for f in files:
        syntax, where = f.entry.transfer_syntax_uid, f.file_id.posix
        if syntax == EXPLICIT_VR_LE:
            continue
        if medium.is_cd:
            raise MediaError(
                f"{where} is in transfer syntax {syntax}; a CD holds Explicit VR Little Endian "
                "only: convert the file or put the exams on DVD"
            )
        if syntax in _JPEG:
            families.add("JPEG")
        elif syntax in _J2K:
            families.add("JPEG 2000")
        else:
            raise MediaError(
                f"{where} is in transfer syntax {syntax}, which no General Purpose DVD/BD "
                "profile allows: convert it to Explicit VR Little Endian"
            )
    if len(families) > 1:
        raise MediaError("a DVD/BD may hold JPEG or JPEG 2000 files, not both (PS3.11 Annex H)")


def build_disc(
    files: Sequence[DiscFile],
    out_iso: Path,
    *,
    fileset_id: str,
    fileset_uid: str,
    medium: Medium,
    readme_text: str,
    progress: Progress | None = None,
    verify: bool = True,
    timestamp: float | None = None,
) -> BuiltDisc:
    """Write `out_iso` holding DICOMDIR, README.TXT, MANIFEST.CSV and `files` at their File IDs.

    A file's SHA-256 in MANIFEST.CSV is the one given for it; when some file has none, each
    file is hashed as it is copied. MANIFEST.CSV's data, written last, is at the end of the
    image: pycdlib writes the image in one pass from start to end.
    With `verify` a thread reads the image back while it is written, following the writer
    (it reads only bytes that are final) and hashing the whole image and every file, by the
    extent pycdlib laid it out at, from the bytes read. Once the image is complete pycdlib
    parses its own directory, which must place every file there, and every file's SHA-256 is
    compared with the manifest (had pycdlib written out of order, the image is read back again
    once complete). The image is flushed to disk (beside the work) and only then renamed to
    `out_iso`; a failure leaves no image. The DICOMDIR waits in a staging folder beside the
    image until it is copied, and MANIFEST.CSV is made row by row as it is written: memory
    grows with the number of files by what pycdlib and the checks need, about 3 KB a file.
    `progress(done, total)` counts bytes written and read back. Without `verify` nothing is
    read back, and the image's SHA-256 is not known (`sha256` is ""). With `timestamp`
    (seconds since the epoch) the image's dates are that instant, so the same files give the
    same bytes.
    """
    if not files:
        raise MediaError("no files to put on disc")
    use_steady_malloc()  # before the threads below (see arenas.py)
    fileset_id = validate_volume_id(fileset_id)
    check_transfer_syntaxes(files, medium)
    sizes = [f.stamp.size if f.stamp else _size(f.src_path) for f in files]  # (stat once)
    payload = sum(sizes)
    meter = _Meter(progress, payload * (2 if verify else 1))
    readme = readme_text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    written = Watermark() if verify else None
    out_iso.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(out_iso)
    flusher = _Flusher(part)  # writes the image back to disk while it is written and checked
    with flusher.on_failure(), contextlib.ExitStack() as stack:
        staging = stack.enter_context(tempfile.TemporaryDirectory(dir=out_iso.parent, prefix=_TMP))
        dicomdir, dicomdir_row = _stage_dicomdir(files, fileset_id, fileset_uid, Path(staging))
        manifest = _Manifest(
            files, sizes, [dicomdir_row, ManifestRow(README_NAME, "", *hash_bytes(readme))]
        )
        copied = stack.enter_context(HashPool(_HASH_WORKERS)) if manifest.hashed else None
        manifest.pool = copied
        # The read-back follows the copy on a thread of its own (the copy waits mostly for the
        # kernel and the disk): it hashes the image, and every file in it, as it is written.
        follower = None
        if written is not None:
            follower = stack.enter_context(_Follower(part, written, meter.counter(1, payload)))
        # Files without a known SHA-256 are hashed as they are copied, on threads of their
        # own (MANIFEST.CSV, written last, lies at the end of the image): no pass over the
        # sources comes before the image, while the disk would idle.
        nbytes, in_order = write_iso(
            out_iso,
            itertools.chain(
                [
                    ImageFile(DICOMDIR_NAME, dicomdir),
                    ImageFile(MANIFEST_NAME, manifest.later()),
                    ImageFile(README_NAME, readme),
                ],
                (ImageFile(f.file_id.posix, f.src_path, f.stamp) for f in files),
            ),
            volume_id=fileset_id,
            medium=medium,
            progress=meter.counter(0, payload),
            on_data=None if copied is None else manifest.copied,
            written=written,
            on_layout=None if follower is None else follower.laid_out,
            keep_part=True,
            timestamp=timestamp,
        )
    try:
        image_sha256 = _check_and_keep(
            part, out_iso, files, manifest, medium, flusher, follower, in_order, meter
        )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()  # a disc that failed its check must not be burned by mistake
        raise
    return BuiltDisc(
        out_iso,
        nbytes,
        image_sha256,
        len(files),
        manifest_sha256=manifest.sha256,
        rows=tuple(manifest.rows),
    )


def _stage_dicomdir(
    files: Sequence[DiscFile], fileset_id: str, fileset_uid: str, folder: Path
) -> tuple[Path, ManifestRow]:
    """Write the DICOMDIR into `folder`, record by record, hashing it as it goes; its path
    and manifest row. It waits there, not in memory (400 bytes a file), until it is copied
    into the image; so do the entries with their File IDs, made here and let go."""
    path = folder / DICOMDIR_NAME
    digest = hashlib.sha256()
    try:
        with path.open("wb") as fp:

            def write(data: bytes) -> None:
                fp.write(data)
                digest.update(data)

            size = write_dicomdir(
                write,
                (
                    f.entry if f.entry.file_id == f.file_id else f.entry.with_file_id(f.file_id)
                    for f in files
                ),
                fileset_id=fileset_id,
                fileset_uid=fileset_uid,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            )
    except OSError as exc:
        raise MediaError(f"could not write the DICOMDIR in {folder}: {os_reason(exc)}") from exc
    return path, ManifestRow(DICOMDIR_NAME, "", size, digest.hexdigest())


_HASH_WORKERS = 2
_TMP = ".trialship-disc-"  # the staging folder's prefix, beside the image
_FIRST = 3  # DICOMDIR, MANIFEST.CSV and README.TXT come first in the list of image files


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _Manifest:
    """MANIFEST.CSV, laid out with placeholder hashes and written last, row by row. A file's
    SHA-256 is the one given for it; when some file has none, every file is hashed as it is
    copied (`pool`), and a given one must match. Its rows are made only when asked for, after
    the image is written: while pycdlib writes MANIFEST.CSV it holds the image's directory,
    and memory is scarcest (40,000 rows take 16 MB)."""

    def __init__(self, files: Sequence[DiscFile], sizes: Sequence[int], head: list[ManifestRow]):
        self.files, self.sizes, self.head = files, sizes, head
        self.pool: HashPool | None = None
        self._rows: list[ManifestRow] = []
        self.sha256 = ""  # once written
        self.hashed = any(f.sha256 is None for f in files)
        """Whether the files are hashed as they are copied (else every SHA-256 is given)."""

    @property
    def rows(self) -> list[ManifestRow]:
        """DICOMDIR, README.TXT, then every file with its size and SHA-256."""
        if not self._rows:
            self._rows = [*self.head, *self._file_rows()]
        return self._rows

    def copied(self, index: int, chunk: bytes, last: bool) -> None:
        """A chunk of the file at `index` in the image's list, as pycdlib copies it."""
        assert self.pool is not None
        n = index - _FIRST
        if n < 0:
            return  # the DICOMDIR, staged on disk, was hashed when it was made
        self.pool.update(n, chunk)
        if last:
            self.pool.finish(n)

    def later(self) -> Deferred:
        placeholder = (
            ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, "0" * 64)
            for f, size in zip(self.files, self.sizes, strict=True)
        )
        size = sum(map(len, manifest_lines(itertools.chain(self.head, placeholder))))
        return Deferred(size, self._content)

    def _content(self) -> Iterator[bytes]:
        # Every file was copied by now: pycdlib writes this last. One row at a time.
        digest = hashlib.sha256()
        for line in manifest_lines(itertools.chain(self.head, self._file_rows())):
            digest.update(line)
            yield line
        self.sha256 = digest.hexdigest()

    def _file_rows(self) -> Iterator[ManifestRow]:
        """Each file's row: its given SHA-256, or that of its copy, which must have its size
        (and, when given, the SHA-256 it was recorded with)."""
        if self.pool is None:
            for f, size in zip(self.files, self.sizes, strict=True):
                assert f.sha256 is not None
                yield ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, f.sha256)
            return
        digests = self.pool.digests()
        empty = (0, hashlib.sha256().hexdigest())
        for n, (f, size) in enumerate(zip(self.files, self.sizes, strict=True)):
            copied, sha256 = digests.get(n, empty)
            if copied != size:
                raise MediaError(
                    f"{f.src_path} changed while the disc image was written "
                    f"({size} bytes before, {copied} copied)"
                )
            if f.sha256 is not None and f.sha256 != sha256:
                raise _changed(f, size, sha256, f.sha256)
            yield ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, sha256)


def _changed(f: DiscFile, size: int, sha256: str, expected: str) -> SourceChangedError:
    return SourceChangedError(
        f"{f.src_path} changed since it was recorded ({size} bytes, SHA-256 {sha256[:12]}...; "
        f"expected {expected[:12]}...)",
        path=str(f.src_path),
    )


def _check_and_keep(
    part: Path,
    out_iso: Path,
    files: Sequence[DiscFile],
    manifest: _Manifest,
    medium: Medium,
    flusher: _Flusher,
    follower: _Follower | None,
    in_order: bool,
    meter: _Meter,
) -> str:
    """Check the finished `part` against the manifest (unless there is no `follower`: not
    verified), wait until it is on disk, rename it."""
    try:
        if follower is not None:
            follower.wait(meter)
            if in_order:
                back = follower.result()
            else:  # what the follower read may have changed after: read the image again
                back, _ = read_back(part)
            rows = manifest.rows  # (made now that the read-back's copy of the directory is gone)
            try:
                check_read_back(back, rows, medium)
            except ManifestMismatch as exc:
                raise _why_different(files, rows, exc) from exc
            image_sha256 = back.image_sha256
        else:
            check_fits(part, part.stat().st_size, medium)
            image_sha256 = ""  # not read back, so not known
    finally:
        flusher.finish()
    os.replace(part, out_iso)
    return image_sha256


class _Follower:
    """The read-back on a thread of its own, following the image as it is written (Watermark).
    Leaving with an error fails the watermark, so the thread ends at once."""

    def __init__(self, part: Path, written: Watermark, progress: Progress) -> None:
        self.written = written
        self.layout: list[Placement] = []
        self.back: ReadBack | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(part, progress), name="read-back", daemon=True
        )

    def laid_out(self, layout: list[Placement]) -> None:
        """From the writer, before its first mark: where each file goes in the image."""
        self.layout = layout

    def _run(self, part: Path, progress: Progress) -> None:
        try:
            self.written.wait_for(1)  # the image's head is on disk and its layout known
            self.back = follow(part, self.layout, self.written, progress=progress)
        except BaseException as exc:  # handed to the caller's thread by result()
            self.error = exc

    def __enter__(self) -> _Follower:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.written.fail()  # (write_iso has, unless it failed before it began)
            self.thread.join()

    def wait(self, meter: _Meter) -> None:
        """Until the thread is done; the meter reports its progress meanwhile."""
        while self.thread.is_alive():
            self.thread.join(_REPORT_EVERY)
            meter.report()

    def result(self) -> ReadBack:
        if self.error is not None:
            raise self.error
        assert self.back is not None
        return self.back


_REPORT_EVERY = 0.25  # seconds


def _why_different(
    files: Sequence[DiscFile], rows: Sequence[ManifestRow], exc: ManifestMismatch
) -> MediaError:
    """A file read back differs from the manifest. If its source no longer hashes to the
    manifest's SHA-256 (given before it was copied), the source changed; else the image is
    bad."""
    source = next((f for f in files if f.file_id.posix == exc.path), None)
    row = next(r for r in rows if r.path == exc.path)
    if source is not None:
        size, now = hash_file(source.src_path)
        if now != row.sha256:
            return _changed(source, size, now, row.sha256)
    return exc


class _Flusher:
    """fdatasync of the image, again and again on a thread while it is written and read back,
    then a last fsync: the disk writes overlap the work instead of following it (the thread
    waits for the disk, not for the CPU), and dirty pages never pile up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: OSError | None = None
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fsync", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fd = -1
        try:
            while not self._done.wait(_FLUSH_EVERY):
                if fd < 0 and self.path.exists():
                    fd = os.open(self.path, os.O_RDONLY)
                if fd >= 0:
                    os.fdatasync(fd)
        except OSError as exc:
            self.error = exc
        finally:
            if fd >= 0:
                os.close(fd)

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._done.set()
            self.thread.join()
            raise

    def finish(self) -> None:
        self._done.set()
        self.thread.join()
        if self.error is None:
            try:
                sync_file(self.path)
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            raise MediaError(f"could not write the disc image: {os_reason(self.error)}")


_FLUSH_EVERY = 0.003
"""Seconds between two fdatasyncs. Short, so the last fsync finds little left to write: every
0.1 s, it still waited for about 0.1 s of the image's writing (a 1,000-file, 490 MB build took
0.53-0.55 s instead of 0.46-0.48 s here). An fdatasync with nothing to write costs microseconds."""


class _Meter:
    """Bytes written and bytes read back as one monotonic (done, total). Only the calling
    thread reports (a job's callback writes to the database, whose session is the calling
    thread's): the read-back's thread only counts, and the writer's progress reports both."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = max(total, 1)
        self.done = 0
        self.counts = [0, 0]

    def counter(self, part: int, size: int) -> Progress:
        """The progress callback of `part` (0: writing, which reports; 1: reading back),
        worth `size` bytes of the total."""

        def update(done: int, total: int) -> None:
            self.counts[part] = max(self.counts[part], size * done // max(total, 1))
            if part == 0:
                self.report()

        return update

    def report(self) -> None:
        self.done = min(max(sum(self.counts), self.done), self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)
