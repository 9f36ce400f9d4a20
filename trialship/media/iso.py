"""Write an ISO 9660 image with pycdlib, streamed, and only ever complete under its final name.

CDs get Interchange Level 1 (PS3.12 F.2.2); DVD and Blu-ray get Level 3 (PS3.12 P.2.2), which
keeps the same 8.3 names but lets a file over 4 GiB span extents. No Joliet, Rock Ridge or UDF:
pycdlib writes only UDF 2.60, outside PS3.12 (standards.md section 5).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pycdlib
import pycdlib.dates
import pycdlib.headervd
import pycdlib.inode
import pycdlib.pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import FileIdError, MediaError, SourceChangedError
from trialship.media.fileid import is_conformant_component, validate_volume_id
from trialship.media.manifest import FileStamp
from trialship.media.watermark import Watermark

# pycdlib copies file data in blocks of this size; 1 MiB instead of its 32 KiB default cuts the
# Python overhead per byte, and stays a fixed, small amount of memory.
_BLOCK = 1024 * 1024
_LEVEL1_NAME = re.compile(r"[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3})?")


@dataclass(frozen=True)
class Deferred:
    """Content known only once every other file's data is written (MANIFEST.CSV holds their
    SHA-256s, computed while they are copied). Its size must be known before: pycdlib lays the
    image out before it writes a byte. Its data is written last and gets the image's last
    extent (wherever its name is listed), so the image is still written from start to end.
    `content()` is called once and must give `size` bytes in all, as chunks of any size (a
    manifest of 40,000 files is written row by row, never whole in memory).
    """

    size: int
    content: Callable[[], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A file to put on the disc: `name` relative to the root ("DICOM/P0000001/.../I0000001",
    "README.TXT"), content from a path (str or Path, read while the image is written), from
    bytes, or `Deferred` (written last, at the end of the image)."""

    name: str
    source: str | Path | bytes | Deferred
    stamp: FileStamp | None = None
    """For a path: what the file system said of it when its header was read; a file whose
    stamp differs when it is copied has changed since (SourceChangedError)."""

    def __post_init__(self) -> None:
        *folders, leaf = self.name.split("/")
        for folder in folders:
            if not is_conformant_component(folder):
                raise FileIdError(f"folder {folder!r} of {self.name} is not an ISO 9660 name")
        if not _LEVEL1_NAME.fullmatch(leaf):
            raise FileIdError(
                f"file name {leaf!r} of {self.name} is not allowed by ISO 9660 Level 1 "
                "(1-8 characters A-Z, 0-9, _ and an optional extension of up to 3)"
            )


def iso_path_of(name: str) -> str:
    """ISO 9660 path of a file's name on the disc: "DICOM/P1/I1" -> "/DICOM/P1/I1.;1" (a name
    without extension is written "NAME.;1": PS3.12 F.1.2.1, ECMA-119 7.5)."""
    return "/" + name + ("" if "." in name.rsplit("/", 1)[-1] else ".") + ";1"


def _folders(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def interchange_level(medium: Medium) -> int:
    return 1 if medium.is_cd else 3


OnData = Callable[[int, bytes, bool], None]
"""Called with the index of a path-sourced file in `files` and each chunk of it, as copied,
and whether the chunk is its last (the file's size reached, or its end)."""
Placement = tuple[int, int, str]
"""Where a file's data is in the image: (offset, length) in bytes, and its name."""
OnLayout = Callable[[list[Placement]], None]
"""Called with every file's placement, in the order of the image, once it is laid out."""


class ImageStream:
    """The file object pycdlib writes the image to: it passes every call on to `fp` and raises
    `written` (a Watermark) as the image's bytes become final, so the read-back can follow the
    copy.

    pycdlib writes the descriptors, path tables and directory records first, jumping back and
    forth, then the files' data in the order of their extents, each followed by its zero
    padding (a seek forward and one zero byte). `begin_data` marks the switch: every byte
    before it is final then, and from then on each write lands past the last one. A write
    below the furthest byte written would change bytes a reader may have read already: then
    `in_order` turns False, and the caller must read the image again once it is complete.
    """

    mode = "wb"

    def __init__(self, fp: BinaryIO, written: Watermark | None = None) -> None:
        self._fp, self._written = fp, written
        self._pos = 0
        self._end = 0  # the furthest byte written so far
        self._data = False  # past begin_data
        self.in_order = True

    def write(self, data: bytes) -> int:
        if self._data and self._pos < self._end:
            self.in_order = False
        self._fp.write(data)
        self._pos += len(data)
        self._end = max(self._end, self._pos)
        if self._data:
            self._publish(self._end)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._fp.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    @property
    def data_begun(self) -> bool:
        return self._data

    def begin_data(self) -> None:
        """Every byte before the current position is written: the files' data starts here."""
        if self._data:
            return
        self._data = True
        if self._end > self._pos:
            self.in_order = False  # something was written where the data goes
        self._publish(self._pos)

    def finish(self, size: int) -> None:
        """The image is complete at `size` bytes (pycdlib has closed it)."""
        self.begin_data()
        if self._written is not None:
            self._written.finish(size)

    def _publish(self, offset: int) -> None:
        if self._written is not None:
            self._fp.flush()  # a reader opens the file itself: the bytes must be in the kernel
            self._written.advance(offset)


class _PycdlibClock:
    """Stands in for the `time` module inside pycdlib, which stamps every volume descriptor and
    directory record with `time.time()` and its local UTC offset. While a thread writes an
    image with a fixed `timestamp`, that thread's pycdlib sees that instant, in UTC; any other
    thread (another build at the same time) sees its own, or the real clock."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def fixed(self, timestamp: float | None) -> Iterator[None]:
        saved = getattr(self._local, "at", None)
        self._local.at = timestamp
        try:
            yield
        finally:
            self._local.at = saved

    def time(self) -> float:
        at: float | None = getattr(self._local, "at", None)
        return _time.time() if at is None else at

    def localtime(self, seconds: float | None = None) -> _time.struct_time:
        if getattr(self._local, "at", None) is None:
            return _time.localtime(seconds)
        return _time.gmtime(seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(_time, name)


_CLOCK = _PycdlibClock()
for _module in (pycdlib.pycdlib, pycdlib.headervd, pycdlib.dates):
    _module.time = _CLOCK  # type: ignore[attr-defined]

_assign_directory_extents = pycdlib.pycdlib._reassign_vd_dirrecord_extents


def _deferred_data_last(
    vd: pycdlib.headervd.PrimaryOrSupplementaryVD, current_extent: int, blocks_per_sector: int
) -> tuple[int, list[pycdlib.inode.Inode], int]:
    """pycdlib's layout step, with the data of `Deferred` files moved to the end of the image.

    pycdlib gives each file's data an extent in a breadth-first walk of the folders (the list
    this returns), then writes the data in the order the files were added. A Deferred file is
    added last, so with its extent last too every byte is written in order (ImageStream).
    """
    current_extent, files, padding = _assign_directory_extents(
        vd, current_extent, blocks_per_sector
    )
    last = [ino for ino in files if _is_deferred(ino)]
    if last:
        files = [ino for ino in files if not _is_deferred(ino)] + last
    return current_extent, files, padding


def _is_deferred(ino: pycdlib.inode.Inode) -> bool:
    source = getattr(ino, "data_fp", None)
    return isinstance(source, _Source) and isinstance(source.source, Deferred)


pycdlib.pycdlib._reassign_vd_dirrecord_extents = _deferred_data_last


def write_iso(
    out: Path,
    files: Iterable[ImageFile],
    *,
    volume_id: str,
    medium: Medium,
    progress: Callable[[int, int], None] | None = None,
    on_data: OnData | None = None,
    written: Watermark | None = None,
    on_layout: OnLayout | None = None,
    keep_part: bool = False,
    timestamp: float | None = None,
) -> tuple[int, bool]:
    """Write the image to `out` and return its size in bytes, and whether it was written in
    order (so that a reader following `written` read its final bytes).

    The image is written to `out` + ".part" and renamed when complete, so a reader never sees
    half an image under the final name; with `keep_part` it stays under the ".part" name for
    the caller to check and rename (`part_path(out)`). On any failure the partial file is
    removed and a MediaError names `out`. `on_data` sees every byte of the path-sourced files
    exactly once, as pycdlib copies it (a checksum needs no second read of the file).
    `written` is raised as the image's bytes become final (`ImageStream`); if pycdlib wrote
    out of order, the flag returned is False. On a failure `written` fails too. `on_layout`
    gets every file's Placement, in image order, once pycdlib has laid it out, before any
    file's data is written. pycdlib
    writes the files' data in the order of `files` and lays it out in the order of a
    breadth-first walk of the folders (each folder's entries sorted), `Deferred` files last:
    give `files` in that order. With `timestamp` (seconds since the epoch) every date in the
    image is that instant in UTC, so the same files and timestamp give the same bytes;
    without, pycdlib's clock.
    """
    volume_id = validate_volume_id(volume_id, what="Volume ID")
    part = part_path(out)
    try:
        with _CLOCK.fixed(timestamp):
            stream = _write(part, files, volume_id, medium, progress, on_data, written, on_layout)
        free_directories()  # before the read-back parses the image: one in memory, not two
        size = part.stat().st_size
        stream.finish(size)
        if not keep_part:
            sync_file(part)
            os.replace(part, out)
    except (OSError, PyCdlibException) as exc:
        _discard(part, written)
        raise MediaError(f"could not write the disc image {out}: {os_reason(exc)}") from exc
    except BaseException:
        _discard(part, written)
        raise
    return size, stream.in_order


def free_directories() -> None:
    """Free the records of the pycdlib objects that are gone. They point at one another
    (parent and children, inode and records), so only the cycle collector frees them, at a
    time of its choosing; a disc of 40,000 files has 40 MB of them."""
    gc.collect()


def _write(
    part: Path,
    files: Iterable[ImageFile],
    volume_id: str,
    medium: Medium,
    progress: Callable[[int, int], None] | None,
    on_data: OnData | None,
    written: Watermark | None,
    on_layout: OnLayout | None,
) -> ImageStream:
    """pycdlib writes the image to `part`; its object lives only here (a closed PyCdlib
    still holds the image's whole directory)."""
    iso = pycdlib.PyCdlib()
    readers: list[_Source] = []
    try:
        iso.new(interchange_level=interchange_level(medium), vol_ident=volume_id)
        with part.open("wb") as fp:
            stream = ImageStream(cast(BinaryIO, fp), written)

            def begin_data() -> None:  # on each file's first read; pycdlib has laid out
                if on_layout is not None and not stream.data_begun:
                    on_layout(_layout(iso))
                stream.begin_data()

            readers = _add_all(iso, files, on_data, begin_data)
            iso.write_fp(cast(BinaryIO, stream), blocksize=_BLOCK, progress_cb=_adapt(progress))
        return stream
    finally:
        for reader in readers:
            reader.close()
        with contextlib.suppress(PyCdlibException):
            iso.close()


def _discard(part: Path, written: Watermark | None) -> None:
    if written is not None:
        written.fail()
    with contextlib.suppress(OSError):
        part.unlink()


def sync_file(path: Path) -> None:
    """Flush the file's data to the disk (before it is renamed and recorded as ready)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def part_path(out: Path) -> Path:
    return out.with_name(out.name + ".part")


def os_reason(exc: BaseException) -> str:
    """An OSError as "No space left on device: /path", anything else as its text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


def _layout(iso: pycdlib.PyCdlib) -> list[Placement]:
    """Where pycdlib put each file's data, in the order of the image."""
    block = iso.logical_block_size
    placed = [
        (ino.extent_location() * block, ino.get_data_length(), ino.data_fp.name)
        for ino in iso.inodes
        if isinstance(ino.data_fp, _Source)
    ]
    placed.sort()
    return placed


def _add_all(
    iso: pycdlib.PyCdlib,
    files: Iterable[ImageFile],
    on_data: OnData | None,
    on_first_read: Callable[[], None],
) -> list[_Source]:
    # One reader per file; the ImageFile itself is let go at once (a disc may have 40,000).
    readers = [
        _Source(f.name, f.source, index, on_data, on_first_read, f.stamp)
        for index, f in enumerate(files)
    ]
    names = {reader.name for reader in readers}
    if len(names) != len(readers):
        counts = Counter(reader.name for reader in readers)
        duplicate = next(name for name, count in counts.items() if count > 1)
        raise MediaError(f"{duplicate} is listed twice for the disc image")
    # Parents before children; sorted so the same files always give the same image layout.
    folders = {folder for name in names for folder in _folders(name)}
    for folder in sorted(folders, key=lambda p: (p.count("/"), p)):
        iso.add_directory(folder)
    # pycdlib keeps each reader and its size, and reads the files during write_fp in the order
    # they were added: deferred content last (a stable sort keeps the others' order).
    for reader in sorted(readers, key=lambda r: isinstance(r.source, Deferred)):
        iso.add_fp(cast(BinaryIO, reader), reader.size, iso_path_of(reader.name))
    return readers


class _Source:
    """A file's content for pycdlib, by its name in the image: a path (opened on first use,
    closed once read to its size), bytes, or Deferred. `on_first_read` runs before any of it
    is read: pycdlib has then written every byte of the image before this file's extent
    (ImageStream.begin_data). `on_data` sees each chunk of a path's file, with `index`.
    pycdlib only seeks to the start, reads and tells: a plain object with slots, as there is
    one for every file of the disc."""

    mode = "rb"  # (what pycdlib checks a file object by)
    __slots__ = (
        "_chunks",
        "_fp",
        "_pos",
        "index",
        "name",
        "on_data",
        "on_first_read",
        "size",
        "source",
        "stamp",
    )

    def __init__(
        self,
        name: str,
        source: str | Path | bytes | Deferred,
        index: int,
        on_data: OnData | None,
        on_first_read: Callable[[], None],
        stamp: FileStamp | None = None,
    ) -> None:
        self.name, self.source, self.index, self.on_data = name, source, index, on_data
        self.on_first_read, self.stamp = on_first_read, stamp
        if isinstance(source, Deferred):
            self.size = source.size
        elif isinstance(source, bytes):
            self.size = len(source)
        else:  # the stamp's size is the file's when its header was read (checked on opening)
            self.size = stamp.size if stamp is not None else os.stat(source).st_size
        self._fp: io.FileIO | None = None
        self._chunks: _Chunks | None = None
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("a disc source is read once, from its start")
        self._pos = 0
        return 0

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        want = self.size - self._pos if size < 0 else min(size, self.size - self._pos)
        if want <= 0:
            self._release()
            return b""
        if isinstance(self.source, bytes):
            if self._pos == 0:
                self.on_first_read()
            chunk = self.source[self._pos : self._pos + want]
        elif isinstance(self.source, Deferred):
            chunk = self._deferred(self.source, want)
        else:
            if self._fp is None:
                self.on_first_read()
                self._fp = open(self.source, "rb", buffering=0)  # noqa: SIM115 (closed below)
                self._check_stamp(self._fp)
            chunk = self._fp.read(want) or b""
        self._pos += len(chunk)
        last = len(chunk) < want or self._pos >= self.size
        if self.on_data is not None and isinstance(self.source, str | Path):
            self.on_data(self.index, chunk, last)
        if last:
            self._release()
        return chunk

    def _deferred(self, source: Deferred, want: int) -> bytes:
        if self._chunks is None:
            self.on_first_read()
            self._chunks = _Chunks(source.content())
        chunk = self._chunks.take(want)
        end = self._pos + len(chunk)
        if len(chunk) < want or (end == self.size and self._chunks.left()):
            raise MediaError(f"deferred content is not the {self.size} bytes laid out")
        return chunk

    def _check_stamp(self, fp: io.FileIO) -> None:
        if self.stamp is not None and FileStamp.of(os.fstat(fp.fileno())) != self.stamp:
            raise SourceChangedError(
                f"{fp.name} changed since its header was read "
                "(its size or modification time differs)",
                path=str(fp.name),
            )

    def _release(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None
        self._chunks = None

    def close(self) -> None:
        self._release()


class _Chunks:
    """Bytes from an iterable of chunks of any size, taken in reads of a given size."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()

    def take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def left(self) -> bool:
        """Whether any byte is left (looks ahead as far as the next non-empty chunk)."""
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buffer += chunk
        return True


def _adapt(
    progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, object], None] | None:
    if progress is None:
        return None

    def callback(done: int, total: int, _opaque: object) -> None:
        progress(done, total)

    return callback
