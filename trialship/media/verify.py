"""Read a disc image back and check every file against the manifest, before anyone burns it.

pycdlib parses the image's own directory (so the check sees what a reader will see: the names,
extents and sizes the directory records hold), then the image is read once from start to end
in large blocks. The whole image is hashed as it passes, and each file's bytes are sliced out
of those blocks by extent and hashed; hashing runs on worker threads (`hashing.HashPool`) while
the next block is read. The read-back can follow an image that is still being written
(`follow`, `watermark.Watermark`): pycdlib writes the directory first and then the data in
order, so the check reads each block once it is final, beside the copy rather than after it,
by the extents the writer laid out; the finished image's own directory must then give the
same ones.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar, cast

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import ManifestMismatch, MediaError
from trialship.media.hashing import HashPool
from trialship.media.iso import Placement, free_directories, iso_path_of
from trialship.media.manifest import MANIFEST_NAME, ManifestRow, parse_manifest
from trialship.media.watermark import Watermark

SECTOR = 2048
_READ = 1024 * 1024
# Blocks read but not yet hashed, at most (each up to _READ bytes): enough for the hashing
# threads never to wait for the reader, few enough that memory stays flat when they lag
# (with 4 MiB blocks, 4 pending, a full DVD of small files peaked 16 MB higher).
_PENDING = 8
_IMAGE = ("the whole image",)  # a pool key no manifest path can equal

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyReport:
    image: Path
    image_bytes: int
    image_sha256: str
    files_checked: int
    bytes_checked: int


@dataclass(frozen=True, slots=True)
class Extent:
    """Where a file's bytes are in the image: (byte offset, length) runs, in order."""

    path: str
    runs: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return sum(length for _, length in self.runs)


@dataclass(frozen=True)
class ReadBack:
    """What one read of an image found: its size and SHA-256, and (size, SHA-256) of every
    file its directory lists, by manifest-style path."""

    image: Path
    image_bytes: int
    image_sha256: str
    files: Mapping[str, tuple[int, str]]


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
    naming the first file that differs (ManifestMismatch for bytes that differ).
    `progress(done, total)` counts bytes read. The report gives the image's SHA-256.
    """
    try:
        image_bytes = image.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc.strerror}") from exc
    check_fits(image, image_bytes, medium)  # before reading gigabytes of it
    back, manifest = read_back(image, progress=progress, with_manifest=rows is None)
    return check_read_back(back, parse_manifest(manifest) if rows is None else rows, medium)


def read_back(
    image: Path, *, progress: Progress | None = None, with_manifest: bool = False
) -> tuple[ReadBack, bytes]:
    """Read `image`'s directory (and MANIFEST.CSV's bytes if asked), then the image from start
    to end: its SHA-256 and every file's, by extent."""
    extents, manifest = read_directory(image, with_manifest=with_manifest)
    runs = [(offset, length, e.path) for e in extents.values() for offset, length in e.runs]
    digests, whole = hash_extents(image, runs, progress=progress)
    return ReadBack(image, whole[0], whole[1], digests), manifest


def follow(
    image: Path,
    layout: Sequence[Placement],
    written: Watermark,
    *,
    progress: Progress | None = None,
) -> ReadBack:
    """Read `image` back while it is written: each block once it is final (`written`), the
    whole image and every file hashed by its placement in `layout`, as the writer laid it out.
    Once the image is complete, its own directory must give every file exactly that place:
    then the hashes are those of the files a reader will see."""
    digests, whole = hash_extents(image, layout, progress=progress, written=written)
    _check_placed(image, layout)
    return ReadBack(image, whole[0], whole[1], digests)


def _check_placed(image: Path, layout: Sequence[Placement]) -> None:
    """Every file record of the image's directory must lie where `layout` placed its file
    (a file in several extents: end to end from there; an empty file's extent means
    nothing), and every file of `layout` must be there whole. Checked record by record, as
    pycdlib lists them: no second copy of the directory."""
    where = {placement[2]: placement for placement in layout}

    def seen(iso: pycdlib.PyCdlib) -> dict[str, int]:
        found: dict[str, int] = {}  # bytes of each file seen so far
        for path, offset, length in _records(iso):
            placed, done = where.get(path), found.get(path, 0)
            if (
                placed is None
                or done + length > placed[1]
                or (length and offset != placed[0] + done)
            ):
                _misplaced(image, path)
            found[path] = done + length
        return found

    found = _with_directory(image, seen)
    for _, length, path in layout:
        if found.get(path) != length:
            _misplaced(image, path)


def _misplaced(image: Path, path: str) -> NoReturn:
    raise MediaError(
        f"the directory of the disc image {image} does not place {path} where it was written"
    )


def check_read_back(
    back: ReadBack, rows: Sequence[ManifestRow], medium: Medium | None = None
) -> VerifyReport:
    """Compare what was read back with the manifest `rows`; see verify_image."""
    check_fits(back.image, back.image_bytes, medium)
    listed = {row.path for row in rows} | {MANIFEST_NAME}
    for path in sorted(back.files):
        if path not in listed:
            raise MediaError(
                f"{iso_path_of(path)} is on the disc image {back.image} but not in the manifest"
            )
    for row in rows:
        if row.path not in back.files:
            raise MediaError(f"{row.path} is missing from the disc image {back.image}")
        size, sha256 = back.files[row.path]
        if size != row.size or sha256 != row.sha256:
            raise ManifestMismatch(
                f"{row.path} on the disc image {back.image} differs from the manifest "
                f"({size} bytes, SHA-256 {sha256[:12]}...; "
                f"expected {row.size} bytes, {row.sha256[:12]}...)",
                path=row.path,
            )
    return VerifyReport(
        image=back.image,
        image_bytes=back.image_bytes,
        image_sha256=back.image_sha256,
        files_checked=len(rows),
        bytes_checked=sum(row.size for row in rows),
    )


def check_fits(image: Path, image_bytes: int, medium: Medium | None) -> None:
    if medium is not None and image_bytes > medium.bytes:
        raise MediaError(
            f"disc image {image} is {image_bytes / 1e6:.1f} MB, more than a {medium.label} "
            f"holds ({medium.bytes / 1e6:.1f} MB)"
        )


def read_directory(image: Path, *, with_manifest: bool = False) -> tuple[dict[str, Extent], bytes]:
    """Every file on the image by manifest-style path ("DICOM/P0000001/.../I0000001"), with
    its extents, as the image's directory records say; and MANIFEST.CSV's bytes if asked."""

    def read(iso: pycdlib.PyCdlib) -> tuple[dict[str, Extent], bytes]:
        runs: dict[str, list[tuple[int, int]]] = {}
        for path, offset, length in _records(iso):
            runs.setdefault(path, []).append((offset, length))
        manifest = b""
        if with_manifest:
            buffer = io.BytesIO()
            iso.get_file_from_iso_fp(buffer, iso_path=iso_path_of(MANIFEST_NAME))
            manifest = buffer.getvalue()
        return {path: Extent(path, tuple(r)) for path, r in runs.items()}, manifest

    return _with_directory(image, read)


_T = TypeVar("_T")


def _with_directory(image: Path, work: Callable[[pycdlib.PyCdlib], _T]) -> _T:
    """`work` on pycdlib's parse of `image`; pycdlib's errors, and the image's, as MediaError.
    The parse lives only in this frame, so that its records are freed (free_directories) as
    soon as `work` is done: this is when a disc of many files needs the most memory."""
    iso = pycdlib.PyCdlib()
    try:
        try:
            iso.open(str(image))
            return work(iso)
        finally:
            with contextlib.suppress(PyCdlibException):
                iso.close()
            del iso
            free_directories()
    except PyCdlibException as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc.strerror}") from exc


def _records(iso: pycdlib.PyCdlib) -> Iterator[tuple[str, int, int]]:
    """(manifest-style path, byte offset, length) of every file record. A file over 4 GiB
    (Level 3) has one record per extent, in order, all with its name."""
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
            yield path, record.extent_location() * SECTOR, record.get_data_length()


def hash_extents(
    image: Path,
    placements: Iterable[Placement],
    *,
    progress: Progress | None = None,
    workers: int = 2,
    written: Watermark | None = None,
) -> tuple[Mapping[str, tuple[int, str]], tuple[int, str]]:
    """(size, SHA-256) of each file's bytes by path (a file in several extents has one
    placement per extent), and of the whole image, from one sequential read of the image
    (following `written` while the image is being written). The image stream has a worker to
    itself and the files share the others (with two workers the two halves of the work are
    about equal); with one, they take turns on it."""
    runs = sorted(placements)
    # While the image is written its size is not known yet: it ends soon after the last file.
    total = (
        os.stat(image).st_size if written is None else max((o + n for o, n, _ in runs), default=1)
    )
    done = 0
    with HashPool(workers, max_pending=_PENDING) as pool, open(image, "rb", buffering=0) as fp:
        pool.update(_IMAGE, b"", worker=0)
        file_worker = 1 if workers > 1 else 0
        left = Counter(path for _, _, path in runs)  # runs to go, by path (one unless 4 GiB+)
        first = 0  # runs before this index end before the current block
        while True:
            want = _READ if written is None else min(_READ, written.wait_for(done + _READ) - done)
            block = fp.read(want) if want > 0 else b""
            if not block:
                break
            start, end = done, done + len(block)
            pool.update(_IMAGE, block)
            view = memoryview(block)
            n = first
            while n < len(runs) and runs[n][0] < end:
                offset, length, path = runs[n]
                lo, hi = max(offset, start), min(offset + length, end)
                # (A file's stream starts at its first extent, not before: a hash object
                # takes a few hundred bytes, and a disc may have 40,000 files.)
                pool.update(
                    path, view[lo - start : hi - start] if lo < hi else b"", worker=file_worker
                )
                if offset + length <= end and n == first:
                    first += 1
                    left[path] -= 1
                    if not left[path]:
                        pool.finish(path)
                n += 1
            done = end
            if progress is not None:
                progress(min(done, total), total)
        if done != (total if written is None else written.size):
            raise MediaError(f"the disc image {image} changed while it was read back")
        for path in (path for path, runs_left in left.items() if runs_left):
            pool.update(path, b"", worker=file_worker)  # empty, at the image's very end
        image_digest = pool.take(_IMAGE)
        assert image_digest is not None  # (given its first chunk above)
        # Every other key is a path.
        return cast(Mapping[str, tuple[int, str]], pool.digests()), image_digest
