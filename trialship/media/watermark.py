"""How much of a file being written is final: the writer raises the mark, a reader follows it.

The disc image is read back while it is written: pycdlib writes the image's directory first,
then every file's data in order, never going back. A reader that stays below the mark reads
bytes that will not change again, so the read-back runs beside the copy (on the other core,
while the copy waits for the disk) instead of after it.
"""

from __future__ import annotations

import threading


class WriterFailed(Exception):
    """The writer gave up (its own error says why): there is nothing more to read."""


class Watermark:
    """`advance` and `finish` from the writer; `wait_for` from one or more readers."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._mark = 0
        self._size: int | None = None
        self._failed = False

    def advance(self, offset: int) -> None:
        """Every byte before `offset` is written (the mark never goes down)."""
        with self._changed:
            if offset > self._mark:
                self._mark = offset
                self._changed.notify_all()

    def finish(self, size: int) -> None:
        """The file is complete at `size` bytes."""
        with self._changed:
            self._mark, self._size = size, size
            self._changed.notify_all()

    def fail(self) -> None:
        with self._changed:
            self._failed = True
            self._changed.notify_all()

    def wait_for(self, offset: int) -> int:
        """Block until `offset` bytes are final or the file is complete; return the mark (the
        file's size once it is complete, which may be less than `offset`)."""
        with self._changed:
            while self._mark < offset and self._size is None and not self._failed:
                self._changed.wait()
            if self._failed:
                raise WriterFailed()
            return self._mark

    @property
    def size(self) -> int | None:
        """The file's size once `finish` was called, else None."""
        with self._changed:
            return self._size
