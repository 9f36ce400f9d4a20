"""The inputs of an import: files, folders (recursive) and zip files, listed safely.

A zip is listed without extracting it; its entries are opened one at a time. Entries with an
absolute path or a `..` component are refused, and a zip bomb guard bounds the total uncompressed
size, the compression ratio of each entry and the number of entries. The declared sizes in a
zip's directory may lie, so reading an entry also stops at its declared size. A zip inside a zip
is refused: unzipped, it would escape the guard that measured its parent.

Each input has a label, the name shown to the user (on stderr, in reports): one printable line
of valid UTF-8 whatever the name holds (see `printable_label`). The path stays as it is.
"""

from __future__ import annotations

import errno
import lzma
import os
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")
"""A zip entry's local header: signature, flags, name length, extra field length."""
_UTF8_NAME = 0x800
_CHANGED = "the zip file changed after it was listed"
_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,  # (how zipfile refuses a compression method it cannot read)
    ValueError,
    zlib.error,
    lzma.LZMAError,
)
"""What reading a zip entry's bytes may raise on a damaged or unusual entry."""


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
    zip_info: zipfile.ZipInfo | None = field(default=None, compare=False, repr=False)
    """The zip entry as listed: where its bytes start, so that reading it needs no second
    listing of the archive (one per entry made a zip of n entries cost n listings)."""


@dataclass(frozen=True)
class SourceRejection:
    """An input refused before it is read: its label and the reason."""

    label: str
    reason: str
    identity: str = ""
    """What tells this input from others when none of its bytes were read: for a zip entry its
    name, CRC-32 and size (the same entry in another copy of the zip is the same input), else
    empty, and the label stands for it."""
    entry: int | None = None
    """A zip entry's place in its zip's directory (from 0, as `SourceItem.entry`)."""


class ZipEntryTooLarge(Exception):
    """An entry decompressed to more than its directory entry said."""


def printable_label(text: str) -> str:
    """`text` as one printable line of valid UTF-8, for a label.

    A byte of a file name that is not UTF-8 (which the OS hands over as a lone surrogate) is
    written ``\\xNN``; a control or other unprintable character (newline, tab, ESC, DEL, a
    right-to-left override...) as `repr` writes it, without the quotes. Else a name could
    forge lines on stderr, or fail to be written in a UTF-8 report.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    if "\udc80" <= char <= "\udcff":  # (os.fsdecode's surrogateescape of a byte)
        return f"\\x{ord(char) - 0xDC00:02x}"
    return repr(char)[1:-1]


def _label(path: Path | str) -> str:
    return printable_label(str(path))


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
        try:
            folder = path.is_dir()
        except OSError as exc:  # (a folder above it cannot be searched)
            yield SourceRejection(_label(path), f"cannot read: {exc.strerror}")
            continue
        if folder:
            yield from _folder(path, limits)
        elif os.path.lexists(path):  # (a broken link is named as one)
            yield from _file(path, limits)
        else:
            yield SourceRejection(_label(path), "no such file or folder")


def _folder(path: Path, limits: ZipLimits) -> Iterator[SourceItem | SourceRejection]:
    # os.walk passes over a folder it cannot list unless it is given `onerror`: each one is
    # named where the walk met it, as an unreadable file is.
    unlisted: list[OSError] = []
    for root, dirs, files in os.walk(path, onerror=unlisted.append):
        yield from _unlisted(unlisted)
        # A link to a folder is not walked (it could lead back up, or out of the source), but
        # it is named: nothing under a source is passed over unsaid.
        links = sorted(name for name in dirs if os.path.islink(os.path.join(root, name)))
        dirs[:] = sorted(name for name in dirs if name not in links)
        for name in links:
            yield SourceRejection(
                _label(os.path.join(root, name)),
                "a symbolic link to a folder is not followed: name that folder itself",
            )
        for name in sorted(files):
            yield from _file(Path(root) / name, limits)
    yield from _unlisted(unlisted)


def _unlisted(errors: list[OSError]) -> Iterator[SourceRejection]:
    for exc in errors:
        reason = exc.strerror or type(exc).__name__
        yield SourceRejection(_label(exc.filename), f"cannot list: {reason}")
    errors.clear()


def _file(path: Path, limits: ZipLimits) -> Iterator[SourceItem | SourceRejection]:
    try:
        info = path.lstat()
    except OSError as exc:
        yield SourceRejection(_label(path), f"cannot read: {exc.strerror}")
        return
    if stat.S_ISLNK(info.st_mode):
        try:
            info = path.stat()
        except OSError as exc:
            yield SourceRejection(_label(path), f"cannot read: {_link_problem(exc)}")
            return
    if not stat.S_ISREG(info.st_mode):
        yield SourceRejection(_label(path), "not a regular file")
        return
    if is_zip(path):
        yield from zip_entries(path, limits)
        return
    yield SourceItem(label=_label(path), path=path, size=info.st_size)


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
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        # (ValueError: an entry name flagged as UTF-8 that is not, UnicodeDecodeError)
        yield SourceRejection(_label(path), f"unreadable zip file ({type(exc).__name__})")
        return
    with archive:
        infos = [(n, info) for n, info in enumerate(archive.infolist()) if not info.is_dir()]
        total = sum(info.file_size for _, info in infos)
        if len(infos) > limits.max_entries:
            yield SourceRejection(
                _label(path), f"zip bomb guard: more than {limits.max_entries} entries"
            )
            return
        if total > limits.max_total_bytes:
            yield SourceRejection(
                _label(path),
                f"zip bomb guard: {total} bytes uncompressed exceeds {limits.max_total_bytes}",
            )
            return
        names = Counter(info.filename for _, info in infos)
        archive_label = _label(path)
        for position, info in infos:
            label = f"{archive_label}!{printable_label(info.filename)}"
            if names[info.filename] > 1:  # (the report names each of them apart)
                label += f" (entry {position + 1})"
            identity = f"zip entry {info.filename!r} crc {info.CRC:08x} size {info.file_size}"
            unsafe = unsafe_member_name(info.filename)
            if unsafe:
                yield SourceRejection(label, unsafe, identity, position)
                continue
            if info.flag_bits & 0x1:
                yield SourceRejection(label, "encrypted zip entry", identity, position)
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size >= limits.ratio_floor_bytes and ratio > limits.max_ratio:
                yield SourceRejection(
                    label,
                    f"zip bomb guard: compression ratio {ratio:.0f} above {limits.max_ratio:.0f}",
                    identity,
                    position,
                )
                continue
            if _holds_a_zip(archive, info):
                yield SourceRejection(
                    label, "a zip inside a zip is not read: unzip it first", identity, position
                )
                continue
            yield SourceItem(
                label=label,
                path=path,
                member=info.filename,
                size=info.file_size,
                entry=position,
                zip_info=info,
            )


def _holds_a_zip(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether the entry is a zip itself. A DICOM file's preamble may begin as a zip does:
    "DICM" after it tells them apart."""
    try:
        with archive.open(info) as entry:
            head = entry.read(132)
    except _ENTRY_ERRORS:
        return False  # (reading the entry says what is wrong with it)
    return head[:4] in _ZIP_MAGIC and head[128:132] != b"DICM"


@contextmanager
def local_file(item: SourceItem, scratch: Path, *, prefix: str = "tmp") -> Iterator[Path]:
    """A path to the item's bytes: the file itself, or a zip entry extracted to `scratch`
    under a name beginning with `prefix` (deleted afterwards). Extraction stops past the
    entry's declared size."""
    if item.member is None:
        yield item.path
        return
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=scratch, prefix=prefix, suffix=".zipentry")
    target = Path(name)
    try:
        with os.fdopen(handle, "wb") as out, _open_entry(item) as entry:
            _copy_bounded(entry, out, item.size)
        yield target
    finally:
        target.unlink(missing_ok=True)


def _open_entry(item: SourceItem) -> IO[bytes] | zipfile.ZipExtFile:
    """The item's entry, opened at the place its listing found it: what ZipFile.open does,
    less reading the archive's whole directory again."""
    info = item.zip_info
    if info is None:  # (an item built by hand)
        with zipfile.ZipFile(item.path) as archive:
            return archive.open(_zip_info(archive, item))
    source = item.path.open("rb")
    try:
        source.seek(info.header_offset)
        header = source.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise zipfile.BadZipFile(_CHANGED)
        magic, flags, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        name = source.read(name_length)
        source.seek(extra_length, os.SEEK_CUR)
        try:
            same = name.decode("utf-8" if flags & _UTF8_NAME else "cp437") == info.orig_filename
        except UnicodeDecodeError:
            same = False
        if magic != _ZIP_MAGIC[0] or not same:
            raise zipfile.BadZipFile(_CHANGED)
        return zipfile.ZipExtFile(source, "r", info, None, close_fileobj=True)
    except BaseException:
        source.close()
        raise


def _zip_info(archive: zipfile.ZipFile, item: SourceItem) -> zipfile.ZipInfo:
    """The item's own entry: by name, zipfile opens the last of the entries with that name."""
    assert item.member is not None
    if item.entry is None:  # (an item built by hand, without its position)
        return archive.getinfo(item.member)
    infos = archive.infolist()
    if item.entry >= len(infos) or infos[item.entry].filename != item.member:
        raise zipfile.BadZipFile(_CHANGED)
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
