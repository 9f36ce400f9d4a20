"""New output files written past the page cache (O_DIRECT), where the file system allows it.

A de-identified copy is written once and not read again by this process, so staging it in the
page cache only costs: the kernel must find a fresh page for every 4 KiB written. On a virtual
machine whose host takes back the guest's free memory (free page reporting, as on this
project's build machines) each such page is a fault on the host too: writing 500 MB through the
cache took 3.2-4.1 s of system time there, and 0.06 s with O_DIRECT (`dd`, 1 MiB blocks).

O_DIRECT asks for blocks written from aligned memory: the bytes are gathered into an aligned
buffer (one per open file, reused by the next) and written a whole number of blocks at a time;
the last partial block is written through the cache once O_DIRECT is switched off. A file
system that refuses O_DIRECT (EINVAL at open or at a write), or a platform without it, gets
ordinary buffered writes.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from types import TracebackType

BLOCK = 4096
"""The alignment asked of offsets, lengths and memory (every logical block size divides it)."""
BUFFER = 4 << 20
"""Most images fit whole (a 2-frame ultrasound of 1.8 MB did not fit in 1 MiB): such a file is
written at its close, which a worker puts off to a thread of its own; a larger one also writes
each full buffer as it goes, waiting for the disk."""
_DIRECT = getattr(os, "O_DIRECT", 0)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
_free: list[memoryview] = []
_free_pid = [0]


def _take_buffer() -> memoryview:
    """An aligned buffer (mmap'd memory is page aligned) until `_give_back`: buffers are reused,
    so their pages are touched once. A file may be closed on another thread than the one that
    wrote it (a worker closes its files in the background), so they are not per thread.

    Private to the process: mmap's default for memory of its own is MAP_SHARED, which a fork
    shares. A process pool forked from a thread that had written a file would have had every
    worker gather its files into that one buffer. A forked child allocates its own too.
    """
    if _free_pid[0] != os.getpid():
        _free.clear()
        _free_pid[0] = os.getpid()
    try:
        return _free.pop()
    except IndexError:
        return memoryview(mmap.mmap(-1, BUFFER, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))


def _give_back(buffer: memoryview) -> None:
    if _free_pid[0] == os.getpid():
        _free.append(buffer)


class OutputFile:
    """A new (or truncated) file at `path` for `write` calls, closed by `close` or `with`.

    Only a file that was closed without an error holds all that was written: an error on the
    way (a full disk) propagates from `write` or `close`, as with an ordinary file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.direct = bool(_DIRECT)
        try:
            self._fd = os.open(path, _FLAGS | _DIRECT, 0o666)
        except OSError as exc:
            if not self.direct or exc.errno != errno.EINVAL:
                raise
            self.direct = False  # (a file system without O_DIRECT: tmpfs before Linux 6.6)
            self._fd = os.open(path, _FLAGS, 0o666)
        self._buffer = _take_buffer() if self.direct else None
        self._pending = 0  # bytes gathered in the buffer, not yet written

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        if self._buffer is None:
            self._write(view)
            return len(view)
        done = 0
        while done < len(view):
            take = min(len(view) - done, BUFFER - self._pending)
            self._buffer[self._pending : self._pending + take] = view[done : done + take]
            self._pending += take
            done += take
            if self._pending == BUFFER:
                self._write_blocks()
        return len(view)

    def _write_blocks(self) -> None:
        """Write the whole blocks gathered; the rest moves to the buffer's start."""
        assert self._buffer is not None
        whole = self._pending - self._pending % BLOCK
        self._write(self._buffer[:whole])
        rest = self._pending - whole
        self._buffer[:rest] = self._buffer[whole : self._pending]
        self._pending = rest

    def _write(self, view: memoryview) -> None:
        done = 0
        while done < len(view):
            try:
                done += os.write(self._fd, view[done:])
            except OSError as exc:
                if not self.direct or exc.errno != errno.EINVAL:
                    raise
                # Opened with O_DIRECT but refused at the write (a block size beyond BLOCK, a
                # file system that only pretends): through the cache, as elsewhere.
                self._buffered()
                continue
            if self.direct and done < len(view):
                # A short write: whatever follows could be out of alignment, so the rest goes
                # through the cache (it is the rare case: the next write says why, ENOSPC).
                self._buffered()

    def _buffered(self) -> None:
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_DIRECT)
        self.direct = False

    def close(self, *, discard: bool = False, through_cache: bool = False) -> None:
        """Write what is gathered and close; `discard`: only close (the file is given up).

        `through_cache`: write what is gathered into the page cache rather than to the disk,
        for a caller that must not wait for the disk now (the kernel writes it back later).
        """
        if self._fd < 0:
            return
        try:
            if self._buffer is not None and self._pending and not discard:
                if through_cache and self.direct:
                    self._buffered()
                self._write_blocks()
                if self._pending:  # the last partial block, through the cache
                    if self.direct:
                        self._buffered()
                    self._write(self._buffer[: self._pending])
                    self._pending = 0
        finally:
            os.close(self._fd)
            self._fd = -1
            if self._buffer is not None:
                _give_back(self._buffer)
                self._buffer = None

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(discard=error is not None)
