"""Read a disc image back and check every file against the manifest, before anyone burns it."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import MediaError
from trialship.media.manifest import MANIFEST_NAME, ManifestRow, hash_file, parse_manifest


@dataclass(frozen=True)
class VerifyReport:
    image: Path
    image_bytes: int
    image_sha256: str
    files_checked: int
    bytes_checked: int


class _HashSink:
    """A write-only file object: pycdlib streams a file into it, 8 KiB at a time."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def iso_path_of(name: str) -> str:
    """ISO 9660 path of a manifest path: "DICOM/P1/I1" -> "/DICOM/P1/I1.;1"."""
    leaf = name.rsplit("/", 1)[-1]
    return "/" + name + ("" if "." in leaf else ".") + ";1"


def verify_image(
    image: Path,
    rows: Sequence[ManifestRow] | None = None,
    *,
    medium: Medium | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check `image` against `rows` (or, when None, against the MANIFEST.CSV inside it).

    Every listed file must be present with the listed size and SHA-256, no unlisted file may be
    on the image (MANIFEST.CSV aside), and the image must fit `medium`. Raises MediaError
    naming the first file that differs.
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
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
        try:
            if rows is None:
                buffer = io.BytesIO()
                iso.get_file_from_iso_fp(buffer, iso_path=iso_path_of(MANIFEST_NAME))
                rows = parse_manifest(buffer.getvalue())
            checked = _check_files(iso, image, rows, progress)
            _check_nothing_extra(iso, image, rows)
        finally:
            iso.close()
    except PyCdlibException as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read the disc image {image}: {exc.strerror}") from exc
    return VerifyReport(
        image=image,
        image_bytes=image_bytes,
        image_sha256=hash_file(image)[1],
        files_checked=len(rows),
        bytes_checked=checked,
    )


def _check_files(
    iso: pycdlib.PyCdlib,
    image: Path,
    rows: Sequence[ManifestRow],
    progress: Callable[[int, int], None] | None,
) -> int:
    total = sum(row.size for row in rows)
    done = 0
    for row in rows:
        sink = _HashSink()
        try:
            iso.get_file_from_iso_fp(
                cast(BinaryIO, sink), iso_path=iso_path_of(row.path), blocksize=1024 * 1024
            )
        except PyCdlibException as exc:
            raise MediaError(f"{row.path} is missing from the disc image {image}") from exc
        if sink.size != row.size or sink.digest.hexdigest() != row.sha256:
            raise MediaError(
                f"{row.path} on the disc image {image} differs from the manifest "
                f"({sink.size} bytes, SHA-256 {sink.digest.hexdigest()[:12]}...; "
                f"expected {row.size} bytes, {row.sha256[:12]}...)"
            )
        done += row.size
        if progress is not None:
            progress(done, total)
    return done


def _check_nothing_extra(iso: pycdlib.PyCdlib, image: Path, rows: Sequence[ManifestRow]) -> None:
    listed = {iso_path_of(row.path) for row in rows} | {iso_path_of(MANIFEST_NAME)}
    for folder, _dirs, files in iso.walk(iso_path="/"):
        for name in files:
            path = folder.rstrip("/") + "/" + name
            if path not in listed:
                raise MediaError(f"{path} is on the disc image {image} but not in the manifest")
