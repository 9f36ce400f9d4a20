"""MANIFEST.CSV: every file on the disc with its size and SHA-256, for the sponsor to check."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from trialship.media.errors import MediaError

MANIFEST_NAME = "MANIFEST.CSV"
README_NAME = "README.TXT"
DICOMDIR_NAME = "DICOMDIR"
HEADER = ("path", "sop_instance_uid", "size", "sha256")
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One file on the disc. `path` is relative to the disc root, "/"-separated, no version."""

    path: str
    sop_instance_uid: str
    size: int
    sha256: str


def manifest_lines(rows: Iterable[ManifestRow]) -> Iterator[bytes]:
    """MANIFEST.CSV, a line at a time (RFC 4180, CRLF line ends so Windows tools open it
    as-is)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in itertools.chain(
        [HEADER], ((r.path, r.sop_instance_uid, r.size, r.sha256) for r in rows)
    ):
        writer.writerow(row)
        yield buffer.getvalue().encode("ascii")
        buffer.seek(0)
        buffer.truncate()


def parse_manifest(data: bytes) -> list[ManifestRow]:
    reader = csv.reader(io.StringIO(data.decode("ascii")))
    header = next(reader, None)
    if tuple(header or ()) != HEADER:
        raise MediaError(f"{MANIFEST_NAME} does not start with the header {','.join(HEADER)}")
    try:
        return [ManifestRow(path, uid, int(size), sha) for path, uid, size, sha in reader]
    except ValueError as exc:
        raise MediaError(f"{MANIFEST_NAME} has a malformed line: {exc}") from exc


_IDENTITY = struct.Struct("<QQqq")


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What the file system says of a file's content: writing to the file, or replacing it,
    changes the modification or change time (the kernel sets ctime: no program can put it
    back). Taken before a header is read, it tells whether the file copied later is the same.
    """

    size: int
    identity: bytes
    """Device, inode, modification and change time (ns), packed: one small object instead of
    four ints, as there is a stamp for each file of a disc."""

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        packed = _IDENTITY.pack(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        return cls(st.st_size, packed)

    @classmethod
    def of_path(cls, path: str | Path) -> FileStamp:
        try:
            return cls.of(os.stat(path))
        except OSError as exc:
            raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def hash_file(path: str | Path, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in 1 MiB chunks; `progress` gets each chunk's size."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fp:
            while chunk := fp.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return size, digest.hexdigest()


def hash_bytes(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()
