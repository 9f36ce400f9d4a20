"""The inputs of an import: files, folders (recursive) and zip files, listed safely.

A zip is listed without extracting it; its entries are opened one at a time. Entries with an
absolute path or a `..` component are refused, and a zip bomb guard bounds the total uncompressed
size, the compression ratio of each entry and the number of entries. The declared sizes in a
zip's directory may lie, so reading an entry also stops at its declared size.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class ZipLimits:
    """The zip bomb guard. Defaults fit a few hundred GB of imaging exams."""

    max_total_bytes: int = 256 << 30
    max_ratio: float = 200.0
    """Uncompressed / compressed size above which an entry is refused (deflate tops at ~1030)."""
    ratio_floor_bytes: int = 1 << 20
    """Entries smaller than this are never refused for their ratio (small zeros compress well)."""
    max_entries: int = 1_000_000


@dataclass(frozen=True)
class SourceItem:
    """One input: a file on disk, or an entry of a zip file (`member` set)."""

    label: str
    """How the report names it: the path, or ``archive.zip!entry/name``."""
    path: Path
    member: str | None = None
    size: int = 0
    entry: int | None = None
    """The zip entry's position in the archive's directory: two entries may share a name."""


@dataclass(frozen=True)
class SourceRejection:
    """An input refused before it is read: its label and the reason."""

    label: str
    reason: str
    identity: str = ""
    """What tells this input from others when none of its bytes were read: for a zip entry its
    name, CRC-32 and size (the same entry in another copy of the zip is the same input), else
    empty, and the label stands for it."""


class ZipEntryTooLarge(Exception):
    """An entry decompressed to more than its directory entry said."""


def is_zip(path: Path) -> bool:
    # Four bytes read with the bare system calls: a buffered file object would cost more than
    # the read, on every input of a folder of 1,000s.
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            magic = os.read(fd, 4)
        finally:
            os.close(fd)
        return magic in _ZIP_MAGIC and zipfile.is_zipfile(path)
    except OSError:
        return False


def iter_sources(
    paths: Iterable[Path], limits: ZipLimits | None = None
) -> Iterator[SourceItem | SourceRejection]:
    """Every input under `paths`, in a stable order (folders sorted, zip entries as stored)."""
    limits = limits or ZipLimits()
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                # A link to a folder is not walked (it could lead back up, or out of the
                # source), but it is named: nothing under a source is passed over unsaid.
                links = sorted(name for name in dirs if os.path.islink(os.path.join(root, name)))
                dirs[:] = sorted(name for name in dirs if name not in links)
                for name in links:
                    yield SourceRejection(
                        os.path.join(root, name),
                        "a symbolic link to a folder is not followed: name that folder itself",
                    )
                for name in sorted(files):
                    yield from _file(Path(root) / name, limits)
        elif path.exists() or path.is_symlink():  # (a broken link is named as one)
            yield from _file(path, limits)
        else:
            yield SourceRejection(str(path), "no such file or folder")


def _file(path: Path, limits: ZipLimits) -> Iterator[SourceItem | SourceRejection]:
    try:
        info = path.lstat()
    except OSError as exc:
        yield SourceRejection(str(path), f"cannot read: {exc.strerror}")
        return
    if stat.S_ISLNK(info.st_mode):
        try:
            info = path.stat()
        except OSError as exc:
            yield SourceRejection(str(path), f"cannot read: {_link_problem(exc)}")
            return
    if not stat.S_ISREG(info.st_mode):
        yield SourceRejection(str(path), "not a regular file")
        return
    if is_zip(path):
        yield from zip_entries(path, limits)
        return
    yield SourceItem(label=str(path), path=path, size=info.st_size)


def _link_problem(exc: OSError) -> str:
    # A link whose target is missing fails with ENOENT, which the OS words as if the link itself
    # were missing: the report would then name a file the user can see in the folder.
    if exc.errno == errno.ENOENT:
        return "broken symbolic link"
    return exc.strerror or type(exc).__name__


def unsafe_member_name(name: str) -> str | None:
    """Why a zip entry name is refused, or None when it is safe to use."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "zip entry with an absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "zip entry with a '..' path component"
    if "\0" in name:
        return "zip entry name with a NUL character"
    return None


def zip_entries(path: Path, limits: ZipLimits) -> Iterator[SourceItem | SourceRejection]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceRejection(str(path), f"unreadable zip file ({type(exc).__name__})")
        return
    with archive:
        infos = [(n, info) for n, info in enumerate(archive.infolist()) if not info.is_dir()]
        total = sum(info.file_size for _, info in infos)
        if len(infos) > limits.max_entries:
            yield SourceRejection(
                str(path), f"zip bomb guard: more than {limits.max_entries} entries"
            )
            return
        if total > limits.max_total_bytes:
            yield SourceRejection(
                str(path),
                f"zip bomb guard: {total} bytes uncompressed exceeds {limits.max_total_bytes}",
            )
            return
        names = Counter(info.filename for _, info in infos)
        for position, info in infos:
            label = f"{path}!{info.filename}"
            if names[info.filename] > 1:  # (the report names each of them apart)
                label += f" (entry {position + 1})"
            identity = f"zip entry {info.filename!r} crc {info.CRC:08x} size {info.file_size}"
            unsafe = unsafe_member_name(info.filename)
            if unsafe:
                yield SourceRejection(label, unsafe, identity)
                continue
            if info.flag_bits & 0x1:
                yield SourceRejection(label, "encrypted zip entry", identity)
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size >= limits.ratio_floor_bytes and ratio > limits.max_ratio:
                yield SourceRejection(
                    label,
                    f"zip bomb guard: compression ratio {ratio:.0f} above {limits.max_ratio:.0f}",
                    identity,
                )
                continue
            yield SourceItem(
                label=label,
                path=path,
                member=info.filename,
                size=info.file_size,
                entry=position,
            )


@contextmanager
def local_file(item: SourceItem, scratch: Path) -> Iterator[Path]:
    """A path to the item's bytes: the file itself, or a zip entry extracted to `scratch`
    (deleted afterwards). Extraction stops past the entry's declared size."""
    if item.member is None:
        yield item.path
        return
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=scratch, suffix=".zipentry")
    target = Path(name)
    try:
        with (
            zipfile.ZipFile(item.path) as archive,
            archive.open(_zip_info(archive, item)) as entry,
            os.fdopen(handle, "wb") as out,
        ):
            _copy_bounded(entry, out, item.size)
        yield target
    finally:
        target.unlink(missing_ok=True)


def _zip_info(archive: zipfile.ZipFile, item: SourceItem) -> zipfile.ZipInfo:
    """The item's own entry: by name, zipfile opens the last of the entries with that name."""
    assert item.member is not None
    if item.entry is None:  # (an item built by hand, without its position)
        return archive.getinfo(item.member)
    infos = archive.infolist()
    if item.entry >= len(infos) or infos[item.entry].filename != item.member:
        raise zipfile.BadZipFile("the zip file changed after it was listed")
    return infos[item.entry]


def _copy_bounded(entry: object, out: object, limit: int) -> None:
    copied = 0
    read = entry.read  # type: ignore[attr-defined]
    write = out.write  # type: ignore[attr-defined]
    while True:
        chunk = read(1 << 20)
        if not chunk:
            return
        copied += len(chunk)
        if copied > limit:
            raise ZipEntryTooLarge("zip entry larger than declared")
        write(chunk)
