"""SHA-256 of many byte streams on worker threads, while the caller keeps reading and writing.

hashlib releases the GIL while it hashes a buffer larger than 2 KiB, so a thread that hashes
runs beside the thread that copies a file into a disc image: the copy and its checksum take one
read of the file and overlap in time. Each stream is hashed by one worker, in the order its
chunks were given; chunks must not change after `update` (bytes, or memoryviews of bytes).
Memory stays bounded: `update` blocks while `max_pending` chunks wait for a worker.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Hashable, Iterator, Mapping
from types import TracebackType
from typing import Any

Key = Hashable
_STOP = object()
_DONE = object()


def _finished(size: int, digest: Any) -> bytes:
    """A finished stream as one small object: its size (8 bytes) and its raw digest. A disc
    may have 40,000 files, each hashed twice (copied, read back): a tuple of an int and a hex
    string would take three times the memory."""
    return size.to_bytes(8, "little") + bytes(digest.digest())


def _result(value: bytes | tuple[int, Any]) -> tuple[int, str]:
    if isinstance(value, bytes):
        return int.from_bytes(value[:8], "little"), value[8:].hex()
    size, digest = value
    return size, str(digest.hexdigest())


class _Digests(Mapping[Key, tuple[int, str]]):
    __slots__ = ("_values",)

    def __init__(self, values: dict[Key, Any]) -> None:
        self._values = values

    def __getitem__(self, key: Key) -> tuple[int, str]:
        return _result(self._values[key])

    def __iter__(self) -> Iterator[Key]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class HashPool:
    """`update(key, chunk)` from one producer thread; `digests()` when every chunk is given.

    Streams are spread over the workers round-robin when first seen, unless `update` names a
    worker (e.g. one worker for a long stream that runs beside many short ones).
    """

    def __init__(self, workers: int = 2, *, max_pending: int = 16) -> None:
        self._queues: list[queue.Queue[Any]] = [
            queue.Queue(maxsize=max(1, max_pending // workers)) for _ in range(workers)
        ]
        # Per worker, each stream's (size, hash object) while it is fed; once finished, the
        # bytes of _finished.
        self._results: list[dict[Key, Any]] = [{} for _ in range(workers)]
        self._owner: dict[Key, int] = {}
        self._threads = [
            threading.Thread(target=self._work, args=(n,), name=f"sha256-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def update(self, key: Key, chunk: bytes | memoryview, *, worker: int | None = None) -> None:
        owner = self._owner.get(key)
        if owner is None:
            owner = len(self._owner) % len(self._queues) if worker is None else worker
            self._owner[key] = owner
            self._queues[owner].put((key, None))  # the stream exists even when empty
        elif owner < 0:
            raise ValueError(f"{key!r} was finished: it takes no more chunks")
        if len(chunk):
            self._queues[owner].put((key, chunk))

    def finish(self, key: Key) -> None:
        """Every chunk of `key` is given: its worker keeps only the digest from then on (a
        hash object holds a few hundred bytes outside Python; a disc may have 40,000 files)."""
        owner = self._owner.get(key)
        if owner is None or owner < 0:
            raise ValueError(f"{key!r} is not a stream of this pool, or finished already")
        self._owner[key] = -1 - owner  # (still known, so that a later update is refused)
        self._queues[owner].put((key, _DONE))

    def digests(self) -> Mapping[Key, tuple[int, str]]:
        """(size, SHA-256 hex) of every stream; waits until all given chunks are hashed. Each
        is decoded when it is looked up: for tens of thousands of streams, a dict of tuples
        and hex strings would take three times the memory."""
        self.close()
        merged: dict[Key, Any] = {}
        for results in self._results:
            merged.update(results)
        return _Digests(merged)

    def take(self, key: Key) -> tuple[int, str] | None:
        """(size, SHA-256 hex) of one stream, which the pool then forgets; None if it was
        never given. Waits as digests() does. For a caller that walks tens of thousands of
        streams, one at a time."""
        self.close()
        owner = self._owner.pop(key, None)
        if owner is None:
            return None
        return _result(self._results[owner if owner >= 0 else -1 - owner].pop(key))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> HashPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _work(self, n: int) -> None:
        q, results = self._queues[n], self._results[n]
        while True:
            item = q.get()
            if item is _STOP:
                return
            key, chunk = item
            if chunk is None:
                results[key] = (0, hashlib.sha256())
                continue
            size, digest = results[key]
            if chunk is _DONE:
                results[key] = _finished(size, digest)
                continue
            digest.update(chunk)
            results[key] = (size + len(chunk), digest)
