"""A package: the local files to send, with their remote relative paths, sizes and SHA-256s.

Hashes are computed once, streaming, when the package is built; the DICOM header fields the
senders and the guard need are read at the same time (header only, never the pixels).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from trialship.errors import ValidationError

MANIFEST_NAME = "SHA256SUMS"
_READ_BLOCK = 1 << 20
_HEADER_TAGS = ["SOPClassUID", "SOPInstanceUID", "PatientIdentityRemoved"]


@dataclass(frozen=True)
class DicomHeader:
    """What the guard and the DIMSE/DICOMweb senders need from a file, read without pixels."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    identity_removed: str | None  # the PatientIdentityRemoved value, None when absent


@dataclass(frozen=True)
class PackageFile:
    path: Path
    remote: str  # POSIX path relative to the destination folder
    size: int
    sha256: str
    dicom: DicomHeader | None = None


@dataclass(frozen=True)
class Package:
    files: tuple[PackageFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self) -> bytes:
        """SHA256SUMS in the format `sha256sum -c` reads."""
        return "".join(f"{f.sha256}  {f.remote}\n" for f in self.files).encode()


def sha256_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as fp:
        while chunk := fp.read(_READ_BLOCK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def read_header(path: Path) -> DicomHeader | None:
    """The header fields, or None when the file is not DICOM Part 10."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    sop_class = str(ds.get("SOPClassUID") or getattr(meta, "MediaStorageSOPClassUID", "") or "")
    sop_instance = str(
        ds.get("SOPInstanceUID") or getattr(meta, "MediaStorageSOPInstanceUID", "") or ""
    )
    if not (transfer_syntax and sop_class and sop_instance):
        return None
    removed = ds.get("PatientIdentityRemoved")
    return DicomHeader(
        sop_class, sop_instance, transfer_syntax, None if removed is None else str(removed)
    )


def _walk(source: Path) -> Iterator[tuple[Path, str]]:
    if source.is_file():
        yield source, source.name
        return
    if not source.is_dir():
        raise ValidationError(f"no such file or folder: {source}", field="source")
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue  # scratch and hidden files never leave
            path = Path(folder) / name
            yield path, PurePosixPath(path.relative_to(source).as_posix()).as_posix()


def build_package(sources: Iterable[Path]) -> Package:
    """Files of `sources` (files by name, folders by their contents, recursively).

    Raises ValidationError when two files would land on the same remote path, or on the
    manifest's name.
    """
    files: list[PackageFile] = []
    seen: dict[str, Path] = {}
    for source in sources:
        for path, remote in _walk(Path(source)):
            if remote == MANIFEST_NAME:
                raise ValidationError(f"{path}: {MANIFEST_NAME} is written by trialship")
            if remote in seen:
                raise ValidationError(f"{path} and {seen[remote]} would both be sent as {remote}")
            seen[remote] = path
            digest, size = sha256_file(path)
            files.append(PackageFile(path, remote, size, digest, read_header(path)))
    if not files:
        raise ValidationError("nothing to send: no files in the sources", field="source")
    return Package(tuple(files))
