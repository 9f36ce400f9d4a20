"""Write an ISO 9660 image with pycdlib, streamed, and only ever complete under its final name.

CDs get Interchange Level 1 (PS3.12 F.2.2); DVD and Blu-ray get Level 3 (PS3.12 P.2.2), which
keeps the same 8.3 names but lets a file over 4 GiB span extents. No Joliet, Rock Ridge or UDF:
pycdlib writes only UDF 2.60, outside PS3.12 (standards.md section 5).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pycdlib
import pycdlib.dates
import pycdlib.headervd
import pycdlib.pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import FileIdError, MediaError
from trialship.media.fileid import is_conformant_component, validate_volume_id

# pycdlib copies file data in blocks of this size; 1 MiB instead of its 32 KiB default cuts the
# Python overhead per byte, and stays a fixed, small amount of memory.
_BLOCK = 1024 * 1024
_LEVEL1_NAME = re.compile(r"[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3})?")


@dataclass(frozen=True)
class Deferred:
    """Content known only once every other file's data is written (MANIFEST.CSV holds their
    SHA-256s, computed while they are copied). Its size must be known before: pycdlib lays the
    image out before it writes a byte. `content()` is called once and must return `size` bytes.
    """

    size: int
    content: Callable[[], bytes]


@dataclass(frozen=True)
class ImageFile:
    """A file to put on the disc: `name` relative to the root ("DICOM/P0000001/.../I0000001",
    "README.TXT"), content from a path (read while the image is written), from bytes, or
    `Deferred` (written last, although it may sit anywhere in the image: out of order)."""

    name: str
    source: Path | bytes | Deferred

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

    @property
    def iso_path(self) -> str:
        # A name without extension is written "NAME.;1" (PS3.12 F.1.2.1, ECMA-119 7.5).
        return "/" + self.name + ("" if "." in self.name.rsplit("/", 1)[-1] else ".") + ";1"

    @property
    def folders(self) -> list[str]:
        parts = self.name.split("/")[:-1]
        return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def interchange_level(medium: Medium) -> int:
    return 1 if medium.is_cd else 3


OnData = Callable[[int, bytes], None]
"""Called with the index of a path-sourced file in `files` and each chunk of it, as copied."""
OnImage = Callable[[bytes | memoryview], None]
"""Called with the image's bytes in order, start to end, as they are written (see ImageStream)."""
_ZEROS = memoryview(bytes(_BLOCK))


class ImageStream:
    """The file object pycdlib writes the image to: it passes every call on to `fp` and gives
    `on_image` the image's bytes from first to last, so a checksum of the whole image needs no
    second read of it.

    pycdlib writes the descriptors, path tables and directory records first, jumping back and
    forth (they are small: kept here until they are complete), then the files' data in the
    order of their extents, each followed by its zero padding (a stream). `begin_data` marks
    the switch: from then on a seek forward is a run of zeros, and a seek backward would break
    the order, so `in_order` turns False and the caller must hash the image from disk instead.
    """

    mode = "wb"

    def __init__(self, fp: BinaryIO, on_image: OnImage) -> None:
        self._fp, self._on_image = fp, on_image
        self._pos = 0
        self._head: list[tuple[int, bytes]] | None = []  # (offset, bytes) until begin_data
        self._streamed = 0  # bytes given to on_image so far
        self.in_order = True

    def write(self, data: bytes) -> int:
        self._fp.write(data)
        if self._head is not None:
            self._head.append((self._pos, bytes(data)))
        elif self.in_order:
            self._stream_to(self._pos)
            if self.in_order and data:
                self._on_image(data)
                self._streamed += len(data)
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._fp.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def begin_data(self) -> None:
        """Every byte before the current position is written: stream from here on."""
        if self._head is None:
            return
        head, self._head = self._head, None
        end = max([self._pos, *(offset + len(data) for offset, data in head)])
        region = bytearray(end)
        for offset, data in head:  # later writes win, as in the file
            region[offset : offset + len(data)] = data
        if region:
            self._on_image(bytes(region))
        self._streamed = end

    def finish(self, size: int) -> None:
        """The image is complete at `size` bytes: the rest of it is zeros (a last seek)."""
        self.begin_data()
        self._stream_to(size)
        if self._streamed != size:
            self.in_order = False

    def _stream_to(self, offset: int) -> None:
        if offset < self._streamed:
            self.in_order = False
            return
        while self._streamed < offset:
            n = min(offset - self._streamed, len(_ZEROS))
            self._on_image(_ZEROS[:n])
            self._streamed += n


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


def write_iso(
    out: Path,
    files: Sequence[ImageFile],
    *,
    volume_id: str,
    medium: Medium,
    progress: Callable[[int, int], None] | None = None,
    on_data: OnData | None = None,
    on_image: OnImage | None = None,
    keep_part: bool = False,
    timestamp: float | None = None,
) -> tuple[int, bool]:
    """Write the image to `out` and return its size in bytes, and whether `on_image` saw it all.

    The image is written to `out` + ".part" and renamed when complete, so a reader never sees
    half an image under the final name; with `keep_part` it stays under the ".part" name for
    the caller to check and rename (`part_path(out)`). On any failure the partial file is
    removed and a MediaError names `out`. `on_data` sees every byte of the path-sourced files
    exactly once, as pycdlib copies it (a checksum needs no second read of the file).
    `on_image` sees the whole image from start to end as it is written (`ImageStream`), unless
    pycdlib wrote it out of order (a `Deferred` file does): then the flag returned is False.
    pycdlib writes the files' data in the order of `files` and lays it out in the order of a
    breadth-first walk of the folders (each folder's entries sorted): give `files` in that
    order. With `timestamp` (seconds since the epoch) every date in the image is that instant
    in UTC, so the same files and timestamp give the same bytes; without, pycdlib's clock.
    """
    volume_id = validate_volume_id(volume_id, what="Volume ID")
    part = part_path(out)
    iso = pycdlib.PyCdlib()
    readers: list[_Source] = []
    try:
        with _CLOCK.fixed(timestamp):
            iso.new(interchange_level=interchange_level(medium), vol_ident=volume_id)
            with part.open("wb") as fp:
                stream = ImageStream(cast(BinaryIO, fp), on_image or _ignore)
                readers = _add_all(iso, files, on_data, stream.begin_data)
                iso.write_fp(cast(BinaryIO, stream), blocksize=_BLOCK, progress_cb=_adapt(progress))
        size = part.stat().st_size
        stream.finish(size)
        if not keep_part:
            sync_file(part)
            os.replace(part, out)
    except (OSError, PyCdlibException) as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise MediaError(f"could not write the disc image {out}: {os_reason(exc)}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    finally:
        for reader in readers:
            reader.close()
        with contextlib.suppress(PyCdlibException):
            iso.close()
    return size, stream.in_order


def _ignore(_chunk: bytes | memoryview) -> None:
    pass


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


def _add_all(
    iso: pycdlib.PyCdlib,
    files: Sequence[ImageFile],
    on_data: OnData | None,
    on_first_read: Callable[[], None],
) -> list[_Source]:
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise MediaError(f"{duplicate} is listed twice for the disc image")
    # Parents before children; sorted so the same files always give the same image layout.
    folders = {folder for f in files for folder in f.folders}
    for folder in sorted(folders, key=lambda p: (p.count("/"), p)):
        iso.add_directory(folder)
    readers: list[_Source] = []
    deferred: list[tuple[ImageFile, Deferred]] = []
    for index, f in enumerate(files):
        if isinstance(f.source, bytes):
            iso.add_fp(io.BytesIO(f.source), len(f.source), f.iso_path)
        elif isinstance(f.source, Deferred):
            deferred.append((f, f.source))
        else:
            # pycdlib keeps the reader and the size; the file is opened and read (once, in
            # 1 MiB blocks) during write_fp.
            reader = _Source(f.source, index, on_data, on_first_read)
            readers.append(reader)
            iso.add_fp(cast(BinaryIO, reader), reader.size, f.iso_path)
    # pycdlib writes file data in the order files were added: deferred content comes last.
    for f, later in deferred:
        reader = _Source(later, -1, None, on_first_read)
        readers.append(reader)
        iso.add_fp(cast(BinaryIO, reader), later.size, f.iso_path)
    return readers


class _Source(io.RawIOBase):
    """A file's content for pycdlib: opened on first use, closed once read to its size.
    `on_first_read` runs before any of it is read: pycdlib has then written every byte of the
    image before this file's extent (ImageStream.begin_data)."""

    def __init__(
        self,
        source: Path | Deferred,
        index: int,
        on_data: OnData | None,
        on_first_read: Callable[[], None],
    ) -> None:
        super().__init__()
        self.source, self.index, self.on_data = source, index, on_data
        self.on_first_read = on_first_read
        self.size = source.size if isinstance(source, Deferred) else source.stat().st_size
        self._fp: io.FileIO | None = None
        self._data: bytes | None = None
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
        if isinstance(self.source, Deferred):
            if self._data is None:
                self.on_first_read()
                self._data = self.source.content()
                if len(self._data) != self.size:
                    raise MediaError(
                        f"deferred content is {len(self._data)} bytes, {self.size} were laid out"
                    )
            chunk = self._data[self._pos : self._pos + want]
        else:
            if self._fp is None:
                self.on_first_read()
                self._fp = open(self.source, "rb", buffering=0)  # noqa: SIM115 (closed below)
            chunk = self._fp.read(want) or b""
            if self.on_data is not None:
                self.on_data(self.index, chunk)
        self._pos += len(chunk)
        if len(chunk) < want or self._pos >= self.size:
            self._release()
        return chunk

    def _release(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None
        self._data = None

    def close(self) -> None:
        self._release()
        super().close()


def _adapt(
    progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, object], None] | None:
    if progress is None:
        return None

    def callback(done: int, total: int, _opaque: object) -> None:
        progress(done, total)

    return callback
