"""C-STORE on the wire: the command set and the file's own dataset bytes as P-DATA-TF PDUs.

pynetdicom negotiates the association and releases it; in between, `Wire` writes each
C-STORE-RQ straight onto the association's socket (PS3.8 9.3.5) and reads the C-STORE-RSP
itself. A file costs one `sendmsg` of its PDUs (PDV headers interleaved with slices of one
read buffer; over TLS, one `sendall` per part) and a `recv` or two, instead of pynetdicom's
per-message encoding and thread hand-offs (~2.6 ms CPU each, the same for 2 KB as for
500 KB). The dataset goes as stored after the file meta group: never decoded, so compressed
syntaxes go as they are.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialship.dicom_header import dataset_offset

P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_ABORT = 0x07
COMMAND = 0x01  # message control header bits (PS3.8 E.2)
LAST = 0x02
NO_DATASET = 0x0101
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
BLOCK = 4 << 20  # file bytes read (and sent) at a time
UNLIMITED_PDU_DATA = 1 << 20  # PDV size when the peer sets no maximum
_IOV_MAX = 512
HASH_STEP = 64 << 10  # hashed between two partial sends, while the peer drains the socket
_PDU_HEAD = struct.Struct(">BBIIBB")  # PDU type, reserved, length, PDV length, context, control
_ELEMENT = struct.Struct("<HHI")


class WireError(Exception):
    """The association broke, or the peer said something a C-STORE SCU does not expect.
    The byte stream can no longer be trusted: the association must be aborted."""


class NotPart10(Exception):
    """The file has no DICOM file meta to find the dataset after (nothing was sent)."""


@dataclass(frozen=True)
class Opened:
    """A file opened for a C-STORE, its first block read into one of the wire's buffers."""

    path: Path
    fp: io.FileIO
    view: memoryview
    size: int
    filled: int
    offset: int  # where the dataset starts
    hasher: Any  # hashlib sha256 of the whole file, or None


@dataclass(frozen=True)
class StoreAnswer:
    status: int
    error_comment: str | None
    sha256: str | None  # of the whole file as read and sent, when asked


def _element(elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"  # UI values are padded with NUL (PS3.5 6.2)
    return _ELEMENT.pack(0x0000, elem, len(value)) + value


def store_command(sop_class: str, sop_instance: str, message_id: int) -> bytes:
    """The C-STORE-RQ command set, Implicit VR Little Endian (PS3.7 9.3.1.1)."""
    body = b"".join(
        [
            _element(0x0002, sop_class.encode("ascii")),
            _element(0x0100, struct.pack("<H", C_STORE_RQ)),
            _element(0x0110, struct.pack("<H", message_id)),
            _element(0x0700, struct.pack("<H", 0)),  # priority: medium
            _element(0x0800, struct.pack("<H", 0x0001)),  # a dataset follows (not 0x0101)
            _element(0x1000, sop_instance.encode("ascii")),
        ]
    )
    return _element(0x0000, struct.pack("<I", len(body))) + body


def parse_command(data: bytes) -> dict[int, bytes]:
    """Element number -> raw value of a group 0000 command set."""
    values: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = _ELEMENT.unpack_from(data, pos)
        pos += 8
        if group != 0x0000 or pos + length > len(data):
            raise WireError("malformed command set in the answer")
        values[elem] = data[pos : pos + length]
        pos += length
    return values


def _us(values: dict[int, bytes], elem: int) -> int | None:
    raw = values.get(elem)
    return struct.unpack("<H", raw[:2])[0] if raw is not None and len(raw) >= 2 else None


class Wire:
    """C-STOREs on an established association's socket (its reactors kept off it)."""

    def __init__(self, sock: socket.socket, peer_max_pdu: int) -> None:
        self.sock = sock
        self._scatter = not isinstance(sock, ssl.SSLSocket)  # an SSLSocket has no sendmsg
        # a P-DATA-TF's variable field holds one PDV item: 4 length + 2 header bytes + data
        self.max_data = peer_max_pdu - 6 if peer_max_pdu else UNLIMITED_PDU_DATA
        if self.max_data < 1:
            raise WireError(f"peer's maximum PDU length {peer_max_pdu} is too small")
        self._buffers = [bytearray(BLOCK), bytearray(BLOCK)]  # one sent, one read ahead
        self._turn = 0

    def open(self, path: Path, *, hash_file: bool) -> Opened:
        """Open `path` and read its first block (done while the previous C-STORE is answered).

        Raises NotPart10 or OSError; nothing is sent."""
        self._turn ^= 1
        view = memoryview(self._buffers[self._turn])
        fp = Path(path).open("rb", buffering=0)  # noqa: SIM115 (closed by store())
        try:
            size = os.fstat(fp.fileno()).st_size
            filled = fp.readinto(view[: min(size, BLOCK)]) or 0
            offset = dataset_offset(bytes(view[: min(filled, 4096)]))
            if offset is None and filled > 4096:  # a long file meta group
                offset = dataset_offset(bytes(view[: min(filled, 1 << 16)]))
            if offset is None or offset > filled:
                raise NotPart10(f"{path}: no DICOM file meta")
        except BaseException:
            fp.close()
            raise
        return Opened(path, fp, view, size, filled, offset, hashlib.sha256() if hash_file else None)

    def store(
        self,
        opened: Opened,
        context_id: int,
        sop_class: str,
        sop_instance: str,
        message_id: int,
        meanwhile: Callable[[], None] = lambda: None,
    ) -> StoreAnswer:
        """Send the opened file's dataset as a C-STORE-RQ on `context_id`, call `meanwhile`
        (the peer is storing it: read the next file), then wait for the answer."""
        with opened.fp:
            self._send_dataset(opened, context_id, sop_class, sop_instance, message_id)
        meanwhile()
        status, comment = self._answer(message_id)
        digest = opened.hasher.hexdigest() if opened.hasher else None
        return StoreAnswer(status, comment, digest)

    def _send_dataset(
        self, opened: Opened, context_id: int, sop_class: str, sop_instance: str, message_id: int
    ) -> None:
        view, filled, hasher = opened.view, opened.filled, opened.hasher
        command = store_command(sop_class, sop_instance, message_id)
        parts: list[bytes | memoryview] = [
            _PDU_HEAD.pack(P_DATA_TF, 0, len(command) + 6, len(command) + 2, context_id,
                           COMMAND | LAST),
            command,
        ]  # fmt: skip
        remaining = opened.size - opened.offset
        start = opened.offset
        if remaining == 0:
            parts.append(_PDU_HEAD.pack(P_DATA_TF, 0, 6, 2, context_id, LAST))
        while True:
            while start < filled:
                piece = min(self.max_data, filled - start)
                remaining -= piece
                control = LAST if remaining == 0 else 0
                parts.append(
                    _PDU_HEAD.pack(P_DATA_TF, 0, piece + 6, piece + 2, context_id, control)
                )
                parts.append(view[start : start + piece])
                start += piece
            self._send(parts, hasher, view[:filled])
            parts = []
            if remaining <= 0:
                return
            try:
                filled = opened.fp.readinto(view[: min(BLOCK, remaining)]) or 0
            except OSError as exc:
                raise WireError(f"{opened.path}: read failed mid-file: {exc}") from None
            if not filled:
                raise WireError(f"{opened.path} shrank while it was sent")
            start = 0

    def _send(self, parts: list[bytes | memoryview], hasher: Any, block: memoryview) -> None:
        """Send `parts`; hash `block` (when there is a hasher) in steps between partial sends.

        The socket is non-blocking (it has a timeout), so a send returns once the socket
        buffer is full; a step of hashing then costs nothing: the peer is draining it."""
        hashed = 0 if hasher is not None else len(block)
        try:
            while parts:
                sent = self._sendmsg(parts[:_IOV_MAX])
                while parts and sent >= len(parts[0]):
                    sent -= len(parts[0])
                    parts.pop(0)
                if sent:
                    parts[0] = memoryview(parts[0])[sent:]
                if parts and hashed < len(block):
                    hasher.update(block[hashed : hashed + HASH_STEP])
                    hashed += HASH_STEP
        except OSError as exc:
            raise WireError(f"connection lost: {exc.strerror or exc}") from None
        if hashed < len(block):
            hasher.update(block[hashed:])  # the rest while the peer stores the file

    def _sendmsg(self, parts: list[bytes | memoryview]) -> int:
        if self._scatter:
            return self.sock.sendmsg(parts)
        self.sock.sendall(parts[0])  # TLS: no sendmsg, one record per part
        return len(parts[0])

    def _exact(self, count: int) -> bytes:
        data = bytearray(count)
        view = memoryview(data)
        got = 0
        try:
            while got < count:
                n = self.sock.recv_into(view[got:], count - got)
                if n == 0:
                    raise WireError("connection closed by the peer")
                got += n
        except TimeoutError:
            raise WireError("no answer from the peer in time") from None
        except OSError as exc:
            raise WireError(f"connection lost: {exc.strerror or exc}") from None
        return bytes(data)

    def _answer(self, message_id: int) -> tuple[int, str | None]:
        """The C-STORE-RSP to `message_id`: (status, error comment)."""
        command = bytearray()
        values: dict[int, bytes] | None = None
        dataset_done = False
        while values is None or (_us(values, 0x0800) != NO_DATASET and not dataset_done):
            pdu_type, _, length = struct.unpack(">BBI", self._exact(6))
            body = self._exact(length)
            if pdu_type == A_ABORT:
                raise WireError(
                    f"association aborted by the peer (source {body[2]}, reason {body[3]})"
                )
            if pdu_type == A_RELEASE_RQ:
                raise WireError("the peer asked to release the association mid-transfer")
            if pdu_type != P_DATA_TF:
                raise WireError(f"unexpected PDU type 0x{pdu_type:02X} from the peer")
            pos = 0
            while pos + 6 <= length:
                item_length, _, control = struct.unpack_from(">IBB", body, pos)
                fragment = body[pos + 6 : pos + 4 + item_length]
                pos += 4 + item_length
                if control & COMMAND:
                    command += fragment
                    if control & LAST:
                        values = parse_command(bytes(command))
                elif control & LAST:
                    dataset_done = True
        field = _us(values, 0x0100)
        answered = _us(values, 0x0120)
        status = _us(values, 0x0900)
        if field != C_STORE_RSP or answered != message_id or status is None:
            raise WireError(
                f"unexpected answer (command 0x{field or 0:04X} to message {answered}, "
                f"expected a C-STORE-RSP to {message_id})"
            )
        comment = values.get(0x0902)
        text = comment.decode("ascii", "replace").rstrip("\0 ") if comment else None
        return status, text or None
