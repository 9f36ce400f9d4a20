"""Read a disc image back and check every file against the manifest, before anyone burns it.

pycdlib parses the image's own directory (so the check sees what a reader will see: the names,
extents and sizes the directory records hold), then the image is read once from start to end
in large blocks. Each file's bytes are sliced out of those blocks by extent and hashed, and the
whole image is hashed as it passes, unless its writer already hashed it as it wrote it;
hashing runs on worker threads (`hashing.HashPool`) while the next block is read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import ManifestMismatch, MediaError
from trialship.media.hashing import HashPool
from trialship.media.manifest import MANIFEST_NAME, ManifestRow, parse_manifest

SECTOR = 2048
_READ = 4 * 1024 * 1024
_IMAGE = ("the whole image",)  # a pool key no manifest path can equal

Progress = Callable[[int, int], None]


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
    image_sha256: str | None = None,
) -> VerifyReport:
    """Check `image` against `rows` (or, when None, against the MANIFEST.CSV inside it).

    Every listed file must be present with the listed size and SHA-256, no unlisted file may be
    on the image (MANIFEST.CSV aside), and the image must fit `medium`. Raises MediaError
    naming the first file that differs. `progress(done, total)` counts bytes read. The report
    gives the image's SHA-256: `image_sha256` when the caller has it (the builder hashes the
    image as it writes it), else hashed in the same pass.
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
    digests, whole = hash_extents(
        image,
        [extents[row.path] for row in rows],
        progress=progress,
        whole=image_sha256 is None,
    )
    for row in rows:
        size, sha256 = digests[row.path]
        if size != row.size or sha256 != row.sha256:
            raise ManifestMismatch(
                f"{row.path} on the disc image {image} differs from the manifest "
                f"({size} bytes, SHA-256 {sha256[:12]}...; "
                f"expected {row.size} bytes, {row.sha256[:12]}...)",
                path=row.path,
            )
    return VerifyReport(
        image=image,
        image_bytes=image_bytes,
        image_sha256=whole[1] if image_sha256 is None else image_sha256,
        files_checked=len(rows),
        bytes_checked=checked,
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
    whole: bool = True,
) -> tuple[dict[str, tuple[int, str]], tuple[int, str]]:
    """(size, SHA-256) of each extent's bytes by path, and of the whole image (unless not
    `whole`: then (0, "")), from one sequential read of the image. The image stream has a
    worker to itself and the files share the others (with two workers the two halves of the
    work are about equal); without it the files take turns on every worker."""
    runs = sorted((offset, length, e.path) for e in extents for offset, length in e.runs)
    total = os.stat(image).st_size
    done = 0
    with HashPool(workers) as pool, open(image, "rb", buffering=0) as fp:
        file_worker: int | None = None
        if whole:
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
            if whole:
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
    image_digest = digests.pop(_IMAGE, (0, ""))
    return {str(key): value for key, value in digests.items()}, image_digest
