"""Build one disc image: DICOMDIR, manifest, ISO, read-back check. Folders come in as paths."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trialship.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from trialship.media.capacity import Medium
from trialship.media.dicomdir import DirEntry, build_dicomdir
from trialship.media.errors import ManifestMismatch, MediaError, SourceChangedError
from trialship.media.fileid import FileId, validate_volume_id
from trialship.media.hashing import HashPool
from trialship.media.iso import (
    Deferred,
    ImageFile,
    os_reason,
    part_path,
    sync_file,
    write_iso,
)
from trialship.media.manifest import (
    DICOMDIR_NAME,
    MANIFEST_NAME,
    README_NAME,
    ManifestRow,
    hash_bytes,
    hash_file,
    manifest_csv,
)
from trialship.media.verify import verify_image

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# PS3.11 Annex H / STD-GEN-DVD-JPEG and -J2K (and the BD equivalents): one family per disc.
_JPEG = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70"})
_J2K = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DiscFile:
    """A DICOM file for the disc: where it is now, its File ID there, and its header keys.
    `sha256`, when given, is what the file must hash to (the registry's record of it, or taken
    while its header was read): MANIFEST.CSV lists it, and the read-back compares the image
    with it (a source that changed since fails the build: SourceChangedError). When None, the
    file is hashed as it is copied. Give files in File ID order (see write_iso)."""

    src_path: Path
    file_id: FileId
    entry: DirEntry
    sha256: str | None = None


@dataclass(frozen=True)
class BuiltDisc:
    path: Path
    bytes: int
    sha256: str
    files: int
    manifest_sha256: str = ""
    rows: tuple[ManifestRow, ...] = field(default=(), repr=False, compare=False)
    """MANIFEST.CSV as written: DICOMDIR, README.TXT, then every file with size and SHA-256."""


def check_transfer_syntaxes(entries: Sequence[DirEntry], medium: Medium) -> None:
    """Refuse files the medium's General Purpose profile does not allow (PS3.11 D.2, H.2).

    CDs (STD-GEN-CD) take Explicit VR Little Endian only; DVD and BD take it plus either the
    JPEG or the JPEG 2000 family, not both on one disc.
    """
    families: set[str] = set()
    for entry in entries:
        syntax = entry.transfer_syntax_uid
        where = entry.file_id.posix if entry.file_id else entry.sop_instance_uid
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

    When every file's SHA-256 is given, MANIFEST.CSV is complete before the image is written
    and pycdlib writes the image in one pass from start to end; with `verify` a thread hashes
    the image as it is written (its SHA-256), then the image is read back in one sequential
    pass and every file's bytes, taken by extent from the image's own directory, are hashed
    and compared with the manifest (had pycdlib written out of order, that pass would hash the
    whole image too). Otherwise each file is hashed as it is copied and MANIFEST.CSV is written
    last; the read-back then hashes the whole image as well. The image is flushed to disk
    (beside the work) and only then renamed to `out_iso`; a failure leaves no image.
    `progress(done, total)` counts bytes written and read back. Without `verify` nothing is
    read back, and the image's SHA-256 is not known (`sha256` is ""). With `timestamp`
    (seconds since the epoch) the image's dates are that instant, so the same files give the
    same bytes.
    """
    if not files:
        raise MediaError("no files to put on disc")
    fileset_id = validate_volume_id(fileset_id)
    entries = [f.entry.with_file_id(f.file_id) for f in files]
    check_transfer_syntaxes(entries, medium)
    sizes = [_size(f.src_path) for f in files]
    payload = sum(sizes)
    meter = _Meter(progress, payload * (2 if verify else 1))
    dicomdir = build_dicomdir(
        entries,
        fileset_id=fileset_id,
        fileset_uid=fileset_uid,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    readme = readme_text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    head = [
        ManifestRow(DICOMDIR_NAME, "", *hash_bytes(dicomdir)),
        ManifestRow(README_NAME, "", *hash_bytes(readme)),
    ]
    manifest = _Manifest(files, sizes, head)
    # With every SHA-256 known, MANIFEST.CSV is written in its place and the image streams out
    # in order: with `verify` a thread hashes it as it is written (beside the copy, which is
    # mostly the kernel's work), and the read-back only hashes the files, on both workers: one
    # SHA-256 pass less after the copy. Otherwise the files are hashed as they are copied and
    # MANIFEST.CSV is written last, out of order: the read-back hashes the whole image too.
    streamed = HashPool(1) if verify and manifest.complete else None
    copied = None if manifest.complete else HashPool(_HASH_WORKERS)
    out_iso.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(out_iso)
    flusher = _Flusher(part)  # writes the image back to disk while it is written and checked
    with flusher.on_failure(), contextlib.ExitStack() as pools:
        for pool in (streamed, copied):
            if pool is not None:
                pools.enter_context(pool)
        manifest.pool = copied
        nbytes, in_order = write_iso(
            out_iso,
            [
                ImageFile(DICOMDIR_NAME, dicomdir),
                ImageFile(MANIFEST_NAME, manifest.data if manifest.complete else manifest.later()),
                ImageFile(README_NAME, readme),
                *(ImageFile(f.file_id.posix, f.src_path) for f in files),
            ],
            volume_id=fileset_id,
            medium=medium,
            progress=meter.phase(payload),
            on_data=None if copied is None else lambda n, chunk: copied.update(n - _FIRST, chunk),
            on_image=None if streamed is None else lambda chunk: streamed.update(0, chunk),
            keep_part=True,
            timestamp=timestamp,
        )
    written_sha256 = None
    if streamed is not None and in_order:
        written_sha256 = streamed.digests()[0][1]
    try:
        image_sha256 = _check_and_keep(
            part,
            out_iso,
            files,
            manifest.rows,
            medium,
            meter.phase(payload),
            verify,
            flusher,
            written_sha256,
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
        manifest_sha256=hash_bytes(manifest.data)[1],
        rows=tuple(manifest.rows),
    )


_HASH_WORKERS = 2
_FIRST = 3  # DICOMDIR, MANIFEST.CSV and README.TXT come first in the list of image files


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _Manifest:
    """MANIFEST.CSV: `complete` at once when every file's SHA-256 is given; otherwise laid out
    with placeholder hashes and written once the files are hashed as they are copied."""

    def __init__(self, files: Sequence[DiscFile], sizes: Sequence[int], head: list[ManifestRow]):
        self.files, self.sizes, self.head = files, sizes, head
        self.pool: HashPool | None = None
        self.rows: list[ManifestRow] = []
        self.data = b""
        self.complete = all(f.sha256 is not None for f in files)
        if self.complete:
            self._finish([f.sha256 or "" for f in files])

    def later(self) -> Deferred:
        placeholder = [
            ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, "0" * 64)
            for f, size in zip(self.files, self.sizes, strict=True)
        ]
        return Deferred(len(manifest_csv([*self.head, *placeholder])), self._content)

    def _content(self) -> bytes:
        assert self.pool is not None
        digests = self.pool.digests()  # every file was copied by now: pycdlib writes this last
        hashes = []
        for n, (f, size) in enumerate(zip(self.files, self.sizes, strict=True)):
            copied, sha256 = digests.get(n, (0, hashlib.sha256().hexdigest()))
            if copied != size:
                raise MediaError(
                    f"{f.src_path} changed while the disc image was written "
                    f"({size} bytes before, {copied} copied)"
                )
            if f.sha256 is not None and f.sha256 != sha256:
                raise _changed(f, size, sha256, f.sha256)
            hashes.append(sha256)
        self._finish(hashes)
        return self.data

    def _finish(self, hashes: Sequence[str]) -> None:
        rows = list(self.head)
        for f, size, sha256 in zip(self.files, self.sizes, hashes, strict=True):
            rows.append(ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, sha256))
        self.rows, self.data = rows, manifest_csv(rows)


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
    rows: Sequence[ManifestRow],
    medium: Medium,
    progress: Progress,
    verify: bool,
    flusher: _Flusher,
    written_sha256: str | None,
) -> str:
    """Read back the finished `part` (unless not `verify`), wait until it is on disk, rename.
    `written_sha256`: the image's SHA-256 from the bytes written, when known."""
    try:
        if verify:
            try:
                report = verify_image(
                    part, rows, medium=medium, progress=progress, image_sha256=written_sha256
                )
            except ManifestMismatch as exc:
                raise _why_different(files, rows, exc) from exc
            image_sha256 = report.image_sha256
        else:
            _check_fits(part, part.stat().st_size, medium)
            image_sha256 = ""  # not read back, so not known
    finally:
        flusher.finish()
    os.replace(part, out_iso)
    return image_sha256


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


_FLUSH_EVERY = 0.1  # seconds


def _check_fits(image: Path, nbytes: int, medium: Medium) -> None:
    if nbytes > medium.bytes:
        raise MediaError(
            f"disc image {image} is {nbytes / 1e6:.1f} MB, more than a {medium.label} holds"
        )


class _Meter:
    """Turns the phases (hashing, writing, reading back) into one monotonic (done, total)."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = max(total, 1)
        self.done = 0
        self.base = 0

    def phase(self, size: int) -> Progress:
        """The progress callback of the next phase, worth `size` of the total."""
        base, self.base = self.base, self.base + size
        return lambda done, total: self.at(base + size * done // max(total, 1))

    def at(self, done: int) -> None:
        self.done = min(max(done, self.done), self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)
