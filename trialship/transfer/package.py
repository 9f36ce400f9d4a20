"""A package: the local files to send, with their remote relative paths, sizes and SHA-256s.

The DICOM header fields the senders and the guard need are read when the package is built
(the head of each file only, never the pixels), so the guard runs before anything leaves.
Hashes are computed then too, or, with `build_package(..., hashed=False)`, by the sender from
the very bytes it reads to send (one read of each file instead of two); the journal check
hashes first only the files the journal knows (`split_confirmed`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from trialship.dicom_header import NotDicom, Unsupported, read_raw_header
from trialship.errors import ValidationError

MANIFEST_NAME = "SHA256SUMS"
_READ_BLOCK = 1 << 20
_SOP_CLASS, _SOP_INSTANCE, _IDENTITY_REMOVED = 0x00080016, 0x00080018, 0x00120062
_HEAD_TAGS = (_SOP_CLASS, _SOP_INSTANCE, _IDENTITY_REMOVED)
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
    sha256: str | None  # None until hashed: the sender hashes what it reads (hashed=False)
    dicom: DicomHeader | None = None


@dataclass(frozen=True)
class Package:
    files: tuple[PackageFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self, hashes: Mapping[str, str] | None = None) -> bytes:
        """SHA256SUMS in the format `sha256sum -c` reads; `hashes` (by remote) fill in the
        files built without one."""
        lines = []
        for f in self.files:
            digest = f.sha256 or (hashes or {}).get(f.remote)
            if not digest:
                raise ValueError(f"{f.remote} has not been hashed")
            lines.append(f"{digest}  {f.remote}\n")
        return "".join(lines).encode()


def sha256_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as fp:
        while chunk := fp.read(_READ_BLOCK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def read_header(path: Path) -> DicomHeader | None:
    """The header fields, or None when the file is not DICOM Part 10. The raw reader takes
    the usual files; anything it leaves (big endian, deflated, malformed) goes to pydicom."""
    try:
        head = read_raw_header(path, _HEAD_TAGS)
    except NotDicom:
        return None
    except (Unsupported, ValueError):
        return _read_header_pydicom(path)
    except OSError:
        return None
    sop_class = head.text(_SOP_CLASS) or head.media_sop_class_uid
    sop_instance = head.text(_SOP_INSTANCE) or head.media_sop_instance_uid
    if not (sop_class and sop_instance):
        return None
    removed = head.text(_IDENTITY_REMOVED) if _IDENTITY_REMOVED in head.values else None
    return DicomHeader(sop_class, sop_instance, head.transfer_syntax_uid, removed)


def _read_header_pydicom(path: Path) -> DicomHeader | None:
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


def build_package(sources: Iterable[Path], *, hashed: bool = True) -> Package:
    """Files of `sources` (files by name, folders by their contents, recursively).

    With `hashed=False` the SHA-256s are left to the sender (it hashes what it sends).
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
            if hashed:
                digest: str | None
                digest, size = sha256_file(path)
            else:
                digest, size = None, path.stat().st_size
            files.append(PackageFile(path, remote, size, digest, read_header(path)))
    if not files:
        raise ValidationError("nothing to send: no files in the sources", field="source")
    return Package(tuple(files))


class JournalLike(Protocol):
    def confirmed(self, remote: str, sha256: str) -> dict[str, Any] | None: ...


def with_sha256(item: PackageFile) -> PackageFile:
    """`item` with its SHA-256 (computed now if the package was built without)."""
    return item if item.sha256 else replace(item, sha256=sha256_file(item.path)[0])


def split_confirmed(
    files: Iterable[PackageFile], journal: JournalLike
) -> tuple[list[tuple[PackageFile, dict[str, Any]]], list[PackageFile]]:
    """(files the journal confirms with this content and their entries, files to send).

    An unhashed file is hashed now only when the journal has an entry for its remote path
    (or cannot say: a journal without `entries`); the others keep sha256 None.
    """
    entries = getattr(journal, "entries", None)
    known = set(entries) if isinstance(entries, Mapping) else None
    done: list[tuple[PackageFile, dict[str, Any]]] = []
    todo: list[PackageFile] = []
    for item in files:
        if item.sha256 is None and (known is None or item.remote in known):
            item = with_sha256(item)
        earlier = journal.confirmed(item.remote, item.sha256) if item.sha256 else None
        if earlier is not None:
            done.append((item, earlier))
        else:
            todo.append(item)
    return done, todo
