"""Read a disc image back and check every file against the manifest, before anyone burns it.

pycdlib parses the image's own directory (so the check sees what a reader will see: the names,
extents and sizes the directory records hold), then the image is read once from start to end
in large blocks. Each file's bytes are sliced out of those blocks by extent and hashed, and the
whole image is hashed as it passes; hashing runs on worker threads (`hashing.HashPool`) while
the next block is read. `ReadBack` makes the same check of an image still being written.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import MediaError
from trialship.media.hashing import HashPool
from trialship.media.manifest import MANIFEST_NAME, ManifestRow, parse_manifest

SECTOR = 2048
_READ = 4 * 1024 * 1024
_IMAGE = ("the whole image",)  # a pool key no manifest path can equal

Progress = Callable[[int, int], None]


class ManifestMismatch(MediaError):
    """A file on the image is not what the manifest says (`path`: its manifest path)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class VerifyReport:
    image: Path
    image_bytes: int
    image_sha256: str
    files_checked: int
    bytes_checked: int


@dataclass(frozen=True)
class Extent:
    """Where a file's bytes are in the image: (byte offset, length) runs, in order."""

    path: str
    runs: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return sum(length for _, length in self.runs)


def iso_path_of(name: str) -> str:
    """ISO 9660 path of a manifest path: "DICOM/P1/I1" -> "/DICOM/P1/I1.;1"."""
    leaf = name.rsplit("/", 1)[-1]
    return "/" + name + ("" if "." in leaf else ".") + ";1"


def verify_image(
    image: Path,
    rows: Sequence[ManifestRow] | None = None,
    *,
    medium: Medium | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check `image` against `rows` (or, when None, against the MANIFEST.CSV inside it).

    Every listed file must be present with the listed size and SHA-256, no unlisted file may be
    on the image (MANIFEST.CSV aside), and the image must fit `medium`. Raises MediaError
    naming the first file that differs. `progress(done, total)` counts bytes read.
    """
    try:
        image_bytes = image.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc.strerror}") from exc
    if medium is not None and image_bytes > medium.bytes:
        raise MediaError(
            f"disc image {image} is {image_bytes / 1e6:.1f} MB, more than a {medium.label} "
            f"holds ({medium.bytes / 1e6:.1f} MB)"
        )
    extents, manifest = read_directory(image, with_manifest=rows is None)
    if rows is None:
        rows = parse_manifest(manifest)
    checked = _check_listing(image, rows, extents)
    digests, whole = hash_extents(image, [extents[row.path] for row in rows], progress=progress)
    for row in rows:
        size, sha256 = digests[row.path]
        if size != row.size or sha256 != row.sha256:
            raise _mismatch(image, row, size, sha256)
    return VerifyReport(
        image=image,
        image_bytes=image_bytes,
        image_sha256=whole[1],
        files_checked=len(rows),
        bytes_checked=checked,
    )


class ReadBack:
    """Checks the files of an image while the image is still being written: each file is read
    back by extent and hashed on a thread of its own as soon as `written(path)` says its data
    is in the image file, while the next files are copied. The first call also means the
    image's directory is complete: the thread reads it (with pycdlib, as `verify_image` does)
    and checks the listing. `finish()` checks whatever was not reported, waits, and raises
    the first difference (ManifestMismatch, or MediaError for the listing).
    """

    def __init__(self, image: Path, rows: Sequence[ManifestRow]) -> None:
        self.image = image
        self.rows = {row.path: row for row in rows}
        self.bytes_checked = 0
        """Bytes of files read back and compared so far (read from other threads for progress)."""
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._told: set[str] = set()
        self._error: MediaError | None = None
        self._thread = threading.Thread(target=self._run, name="read-back", daemon=True)
        self._thread.start()

    def written(self, path: str) -> None:
        if path in self.rows and path not in self._told:
            self._told.add(path)
            self._queue.put(path)

    def finish(self) -> None:
        for path in self.rows:
            self.written(path)
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        extents: dict[str, Extent] | None = None
        fd = -1
        try:
            while (path := self._queue.get()) is not None:
                if self._error is not None:
                    continue  # the first difference is the one reported; the rest is drained
                try:
                    if extents is None:
                        extents, _ = read_directory(self.image)
                        _check_listing(self.image, list(self.rows.values()), extents)
                        fd = os.open(self.image, os.O_RDONLY)
                    self._check(fd, self.rows[path], extents[path])
                except MediaError as exc:
                    self._error = exc
                except OSError as exc:
                    self._error = MediaError(
                        f"cannot read the disc image {self.image}: {exc.strerror}"
                    )
        finally:
            if fd >= 0:
                os.close(fd)

    def _check(self, fd: int, row: ManifestRow, extent: Extent) -> None:
        digest = hashlib.sha256()
        size = 0
        for offset, length in extent.runs:
            end = offset + length
            while offset < end:
                chunk = os.pread(fd, min(_READ, end - offset), offset)
                if not chunk:
                    break
                digest.update(chunk)
                offset += len(chunk)
                size += len(chunk)
        sha256 = digest.hexdigest()
        if size != row.size or sha256 != row.sha256:
            raise _mismatch(self.image, row, size, sha256)
        self.bytes_checked += size


def _mismatch(image: Path, row: ManifestRow, size: int, sha256: str) -> ManifestMismatch:
    return ManifestMismatch(
        f"{row.path} on the disc image {image} differs from the manifest "
        f"({size} bytes, SHA-256 {sha256[:12]}...; "
        f"expected {row.size} bytes, {row.sha256[:12]}...)",
        path=row.path,
    )


def read_directory(image: Path, *, with_manifest: bool = False) -> tuple[dict[str, Extent], bytes]:
    """Every file on the image by manifest-style path ("DICOM/P0000001/.../I0000001"), with
    its extents, as the image's directory records say; and MANIFEST.CSV's bytes if asked."""
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
        try:
            extents = _walk(iso)
            manifest = b""
            if with_manifest:
                buffer = io.BytesIO()
                iso.get_file_from_iso_fp(buffer, iso_path=iso_path_of(MANIFEST_NAME))
                manifest = buffer.getvalue()
        finally:
            iso.close()
    except PyCdlibException as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc.strerror}") from exc
    return extents, manifest


def _walk(iso: pycdlib.PyCdlib) -> dict[str, Extent]:
    runs: dict[str, list[tuple[int, int]]] = {}
    folders = ["/"]
    while folders:
        folder = folders.pop()
        for record in iso.list_children(iso_path=folder):
            if record.is_dot() or record.is_dotdot():
                continue
            name = record.file_identifier().decode("ascii")
            if record.is_dir():
                folders.append(folder.rstrip("/") + "/" + name)
                continue
            path = (folder.rstrip("/") + "/" + name.split(";")[0].rstrip(".")).lstrip("/")
            # A file over 4 GiB (Level 3) has one record per extent, all with its name.
            runs.setdefault(path, []).append(
                (record.extent_location() * SECTOR, record.get_data_length())
            )
    return {path: Extent(path, tuple(r)) for path, r in runs.items()}


def _check_listing(image: Path, rows: Sequence[ManifestRow], extents: dict[str, Extent]) -> int:
    listed = {row.path for row in rows} | {MANIFEST_NAME}
    for path in sorted(extents):
        if path not in listed:
            raise MediaError(
                f"{iso_path_of(path)} is on the disc image {image} but not in the manifest"
            )
    for row in rows:
        if row.path not in extents:
            raise MediaError(f"{row.path} is missing from the disc image {image}")
    return sum(row.size for row in rows)


def hash_extents(
    image: Path,
    extents: Iterable[Extent],
    *,
    progress: Progress | None = None,
    workers: int = 2,
) -> tuple[dict[str, tuple[int, str]], tuple[int, str]]:
    """(size, SHA-256) of each extent's bytes by path, and of the whole image, from one
    sequential read of the image. The image stream has a worker to itself; the files
    share the others (with two workers the two halves of the work are about equal)."""
    runs = sorted((offset, length, e.path) for e in extents for offset, length in e.runs)
    total = os.stat(image).st_size
    done = 0
    with HashPool(workers) as pool, open(image, "rb", buffering=0) as fp:
        pool.update(_IMAGE, b"", worker=0)
        file_worker = 1 if workers > 1 else 0
        for _, _, path in runs:
            pool.update(path, b"", worker=file_worker)
        first = 0  # runs before this index end before the current block
        while True:
            block = fp.read(_READ)
            if not block:
                break
            start, end = done, done + len(block)
            pool.update(_IMAGE, block)
            view = memoryview(block)
            n = first
            while n < len(runs) and runs[n][0] < end:
                offset, length, path = runs[n]
                lo, hi = max(offset, start), min(offset + length, end)
                if lo < hi:
                    pool.update(path, view[lo - start : hi - start])
                if offset + length <= end and n == first:
                    first += 1
                n += 1
            done = end
            if progress is not None:
                progress(done, total)
        if done != total:
            raise MediaError(f"the disc image {image} changed while it was read back")
        digests = pool.digests()
    whole = digests.pop(_IMAGE)
    return {str(key): value for key, value in digests.items()}, whole
