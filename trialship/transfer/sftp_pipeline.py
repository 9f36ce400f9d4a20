"""Pipelined SFTP uploads on one channel: many files in flight, no round trip per file.

paramiko's SFTPFile waits for the server after open, close, stat and rename (five round trips
per file), and copies each write request once per SSH packet as it slices it. Here every
request (OPEN, WRITE, FSTAT, CLOSE, RENAME) is framed into one send buffer that goes out in
full SSH packets; file bytes are read straight into that buffer (and hashed there); answers
are handled as they arrive. The next files are opened while one is written, and a file is
renamed from `.part` only once all its writes, its size (FSTAT) and its CLOSE are confirmed.
OpenSSH's sftp-server handles requests in order; the only ordering relied on is that of
requests on one handle, which the protocol guarantees.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_REMOVE,
    CMD_RENAME,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
)

from trialship.transfer.errors import TransferError

Progress = Callable[[int, int], None]
OPEN_WRITE, OPEN_CREATE, OPEN_TRUNCATE = 0x02, 0x08, 0x10
ATTR_SIZE = 0x01
LOOKAHEAD = 2  # files opened ahead of the one being written
IN_FLIGHT = 16 << 20  # unanswered write bytes before we wait (the SSH window limits first)
HASH_BLOCK = 1 << 20


@dataclass
class Upload:
    """One file (or in-memory bytes) going to `target` through `target.part`."""

    target: str
    size: int
    offset: int  # bytes the `.part` already holds (resume), 0 for a fresh upload
    path: Path | None = None
    data: bytes | None = None
    hash_file: bool = False  # hash the whole file as it is read (prefix included)
    done: Callable[[Upload], None] | None = None
    sha256: str | None = None
    handle: bytes | None = None
    waiting: int = 0  # unanswered requests on the handle (writes, FSTAT, CLOSE)
    remote_size: int | None = None
    closed: bool = False
    _hasher: Any = field(default=None, repr=False)

    @property
    def part(self) -> str:
        return f"{self.target}.part"


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _status_error(code: int, text: str, path: str, *, writing: bool) -> TransferError:
    if code == SFTP_PERMISSION_DENIED:
        return TransferError(f"permission denied: {path}", permanent=True)
    if writing and code == SFTP_FAILURE:
        # OpenSSH maps ENOSPC (and EDQUOT) to the generic SSH_FX_FAILURE status.
        return TransferError(f"remote disk full (write failed: {path})", permanent=True)
    if code == SFTP_NO_SUCH_FILE:
        return TransferError(f"remote error on {path}: no such file")
    return TransferError(f"remote error on {path}: {text or f'status {code}'}")


def _status(body: bytes) -> tuple[int, str]:
    code = struct.unpack_from(">I", body)[0]
    text = ""
    if len(body) >= 8:
        length = struct.unpack_from(">I", body, 4)[0]
        text = body[8 : 8 + length].decode("utf-8", "replace")
    return code, text


class Pipeline:
    """Requests framed into one buffer, sent in full SSH packets, answered by callback."""

    def __init__(self, sftp: Any, request_size: int, posix_rename: bool, progress: Progress):
        self.sftp = sftp
        self.channel = sftp.sock
        self.request_size = request_size
        self.posix_rename = posix_rename
        self.progress = progress
        self.packet = max(1024, int(self.channel.out_max_packet_size) - 64)
        self.buffer = bytearray(request_size + 2 * self.packet + 4096)
        self.view = memoryview(self.buffer)
        self.fill = 0
        self.handlers: dict[int, Callable[[int, bytes], None]] = {}
        self.in_flight = 0
        self.bytes_sent = 0

    # ------------------------------------------------------------ framing and sending

    def _request(self, kind: int, payload: bytes, handler: Callable[[int, bytes], None]) -> None:
        rid = self._next_id()
        self._put(struct.pack(">IBI", len(payload) + 5, kind, rid) + payload)
        self.handlers[rid] = handler

    def _next_id(self) -> int:
        with self.sftp._lock:  # paramiko's own counter, so its later requests never collide
            rid = int(self.sftp.request_number)
            self.sftp.request_number = rid + 1
        return rid

    def _room(self, count: int) -> None:
        if self.fill + count > len(self.buffer):
            self._send(full_only=True)

    def _put(self, data: bytes) -> None:
        self._room(len(data))
        self.view[self.fill : self.fill + len(data)] = data
        self.fill += len(data)

    def _send(self, *, full_only: bool) -> None:
        """Send the buffer in SSH-packet-sized pieces (all of it, or only full packets)."""
        start = 0
        end = self.fill - (self.fill % self.packet if full_only else 0)
        try:
            while start < end:
                sent = self.channel.send(self.view[start : min(end, start + self.packet)])
                if sent <= 0:
                    raise ConnectionError("SFTP channel closed")
                start += sent
        except OSError as exc:
            raise ConnectionError(f"SFTP channel closed: {exc}") from None
        rest = self.fill - start
        if rest:
            self.view[:rest] = self.view[start : self.fill]
        self.fill = rest

    def _answer(self, *, block: bool) -> bool:
        """Handle one answer if one is there (or wait for one); False when none is due."""
        if not self.handlers or not (block or self.channel.recv_ready()):
            return False
        kind, data = self.sftp._read_packet()
        rid = struct.unpack_from(">I", data)[0]
        handler = self.handlers.pop(rid, None)
        if handler is None:
            raise TransferError(f"unexpected SFTP answer #{rid}")
        handler(kind, data[4:])
        return True

    def _wait(self, until: Callable[[], bool]) -> None:
        self._send(full_only=False)
        while not until():
            if not self._answer(block=True):
                raise TransferError("SFTP answers ended before the transfer did")
            self._send(full_only=False)  # what the answers queued (renames)

    # ------------------------------------------------------------ one file

    def _open(self, up: Upload) -> None:
        flags = OPEN_WRITE | OPEN_CREATE | (0 if up.offset else OPEN_TRUNCATE)

        def opened(kind: int, body: bytes) -> None:
            if kind == CMD_STATUS:
                raise _status_error(*_status(body), up.part, writing=True)
            if kind != CMD_HANDLE:
                raise TransferError(f"unexpected answer to opening {up.part}")
            up.handle = body[4 : 4 + struct.unpack_from(">I", body)[0]]

        payload = _string(up.part.encode("utf-8")) + struct.pack(">II", flags, 0)
        self._request(CMD_OPEN, payload, opened)

    def _on_handle(self, up: Upload, *, writing: bool) -> Callable[[int, bytes], None]:
        def answered(kind: int, body: bytes) -> None:
            up.waiting -= 1
            if kind == CMD_ATTRS:
                flags = struct.unpack_from(">I", body)[0]
                if flags & ATTR_SIZE:
                    up.remote_size = struct.unpack_from(">Q", body, 4)[0]
            elif kind != CMD_STATUS:
                raise TransferError(f"unexpected answer on {up.part}")
            else:
                code, text = _status(body)
                if code != SFTP_OK:
                    raise _status_error(code, text, up.part, writing=writing)
            if up.closed and up.waiting == 0:
                self._rename(up)

        return answered

    def _chunks(self, up: Upload) -> Iterator[tuple[int, int]]:
        """(offset, length) of the write requests from the resume offset to the end."""
        position = up.offset
        while position < up.size:
            count = min(self.request_size, up.size - position)
            yield position, count
            position += count

    def _write(self, up: Upload, reader: Any) -> None:
        assert up.handle is not None
        on_write = self._on_handle(up, writing=True)

        def written(kind: int, body: bytes, *, count: int) -> None:
            self.in_flight -= count
            on_write(kind, body)

        handle = _string(up.handle)
        for position, count in self._chunks(up):
            while self.in_flight > IN_FLIGHT:
                self._send(full_only=False)
                self._answer(block=True)
            rid = self._next_id()
            head = (
                struct.pack(">IBI", 1 + 4 + len(handle) + 12 + count, CMD_WRITE, rid)
                + handle
                + struct.pack(">QI", position, count)
            )
            self._room(len(head) + count)
            self.view[self.fill : self.fill + len(head)] = head
            self.fill += len(head)
            region = self.view[self.fill : self.fill + count]
            reader(region)
            if up._hasher is not None:
                up._hasher.update(region)
            self.fill += count
            up.waiting += 1
            self.in_flight += count
            self.handlers[rid] = functools.partial(written, count=count)
            self.bytes_sent += count
            self.progress(0, count)
            while self._answer(block=False):
                pass

    def _finish_file(self, up: Upload) -> None:
        assert up.handle is not None
        handle = _string(up.handle)
        up.waiting += 2
        self._request(CMD_FSTAT, handle, self._on_handle(up, writing=False))
        up.closed = True
        self._request(CMD_CLOSE, handle, self._on_handle(up, writing=True))
        if up._hasher is not None:
            up.sha256 = up._hasher.hexdigest()

    def _rename(self, up: Upload) -> None:
        if up.remote_size != up.size:
            raise TransferError(f"remote size of {up.part} is {up.remote_size}, expected {up.size}")

        def renamed(kind: int, body: bytes) -> None:
            code, text = _status(body) if kind == CMD_STATUS else (-1, "unexpected answer")
            if code != SFTP_OK:
                raise _status_error(code, text, up.target, writing=False)
            if up.done is not None:
                up.done(up)

        part, target = up.part.encode("utf-8"), up.target.encode("utf-8")
        if self.posix_rename:
            payload = _string(b"posix-rename@openssh.com") + _string(part) + _string(target)
            self._request(CMD_EXTENDED, payload, renamed)
            return

        def removed(kind: int, body: bytes) -> None:  # a missing target is fine
            self._request(CMD_RENAME, _string(part) + _string(target), renamed)

        self._request(CMD_REMOVE, _string(target), removed)

    # ------------------------------------------------------------ many files

    def run(self, uploads: list[Upload]) -> None:
        """Upload all of `uploads` (raises TransferError on the first failure)."""
        queue = iter(uploads)
        ahead: deque[Upload] = deque()

        def top_up() -> None:
            while len(ahead) < LOOKAHEAD + 1:
                up = next(queue, None)
                if up is None:
                    return
                self._open(up)
                ahead.append(up)

        top_up()
        while ahead:
            up = ahead.popleft()
            top_up()
            if up.handle is None:
                self._wait(functools.partial(_has_handle, up))
            if up.data is not None:
                self._write(up, _memory_reader(up.data, up.offset))
            else:
                self._write_file(up)
            self._finish_file(up)
        self._wait(lambda: not self.handlers)

    def _write_file(self, up: Upload) -> None:
        assert up.path is not None
        try:
            fp = up.path.open("rb", buffering=0)
        except OSError as exc:
            raise TransferError(f"cannot read {up.path}: {exc.strerror or exc}") from None
        with fp:
            if up.hash_file:
                up._hasher = hashlib.sha256()
                _hash_prefix(fp, up)
            fp.seek(up.offset)

            def read(region: memoryview) -> None:
                got = 0
                try:
                    while got < len(region):
                        n = fp.readinto(region[got:])
                        if not n:
                            raise TransferError(f"{up.path} shrank while it was sent")
                        got += n
                except OSError as exc:
                    raise TransferError(f"cannot read {up.path}: {exc.strerror or exc}") from None

            self._write(up, read)


def _has_handle(up: Upload) -> bool:
    return up.handle is not None


def _memory_reader(data: bytes, offset: int) -> Callable[[memoryview], None]:
    source = memoryview(data)
    position = offset

    def read(region: memoryview) -> None:
        nonlocal position
        region[:] = source[position : position + len(region)]
        position += len(region)

    return read


def _hash_prefix(fp: Any, up: Upload) -> None:
    """Hash the bytes a resumed `.part` already holds (they are not sent again)."""
    remaining = up.offset
    while remaining > 0:
        chunk = fp.read(min(HASH_BLOCK, remaining))
        if not chunk:
            raise TransferError(f"{up.path} shrank while it was sent")
        up._hasher.update(chunk)
        remaining -= len(chunk)
