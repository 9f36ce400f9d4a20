"""The head of a DICOM Part 10 file read from its bytes: where the dataset starts, and the few
top-level values the guard and the senders need.

pydicom builds a Dataset per file (~1 ms each: most of a package's build time for 1,000
files); the senders need only the dataset's offset, the SOP class and instance, the transfer
syntax and PatientIdentityRemoved. This walks the elements of the first bytes of the file
with `struct`, skipping values (and undefined-length sequences) without decoding them, and
stops after (0012,0062). Anything it is not sure of (big endian, deflated, a private
transfer syntax, non-ASCII or multi-valued text, a head longer than the bytes given) gives
None, and the caller asks pydicom.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.uid import UID

PREAMBLE = 128
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
_ITEM = (0xFFFE, 0xE000)
_ITEM_END = (0xFFFE, 0xE00D)
_SEQUENCE_END = (0xFFFE, 0xE0DD)
_SOP_CLASS = (0x0008, 0x0016)
_SOP_INSTANCE = (0x0008, 0x0018)
_IDENTITY_REMOVED = (0x0012, 0x0062)
_TAG = struct.Struct("<HH")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")
_IMPLICIT = struct.Struct("<HHI")


class _Unsure(Exception):
    """The bytes end early or hold something this reader leaves to pydicom."""


@dataclass(frozen=True)
class FileHead:
    dataset_offset: int  # where the dataset starts (after the file meta group)
    transfer_syntax_uid: str
    media_sop_class_uid: str
    media_sop_instance_uid: str
    sop_class_uid: str | None  # from the dataset, None when absent
    sop_instance_uid: str | None
    identity_removed: str | None  # PatientIdentityRemoved, None when absent


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, int, bytes | None, int, int]:
    """(group, element, VR or None, value position, value length) of the element at pos."""
    if implicit:
        group, elem, length = _IMPLICIT.unpack_from(buf, pos)
        return group, elem, None, pos + 8, length
    group, elem, vr, length = _EXPLICIT_SHORT.unpack_from(buf, pos)
    if (group, elem) in (_ITEM, _ITEM_END, _SEQUENCE_END):
        raise _Unsure  # a delimiter where an element belongs
    if vr in _LONG_VRS:
        length = _EXPLICIT_LONG.unpack_from(buf, pos)[3]
        return group, elem, vr, pos + 12, length
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _Unsure
    return group, elem, vr, pos + 8, length


def _skip_items(buf: bytes, pos: int, implicit: bool) -> int:
    """The position after an undefined-length value (items up to the sequence delimiter)."""
    while True:
        group, elem, length = _IMPLICIT.unpack_from(buf, pos)
        pos += 8
        if (group, elem) == _SEQUENCE_END:
            return pos
        if (group, elem) != _ITEM:
            raise _Unsure
        if length != UNDEFINED:
            pos += length
            continue
        while _TAG.unpack_from(buf, pos) != _ITEM_END:
            _, _, vr, pos, length = _element(buf, pos, implicit)
            if length == UNDEFINED:
                # an explicit-VR UN of undefined length holds implicit-VR items (PS3.5 6.2.2)
                pos = _skip_items(buf, pos, implicit or vr == b"UN")
            else:
                pos += length
        pos += 8


def _text(raw: bytes) -> str:
    if b"\\" in raw or not raw.isascii():
        raise _Unsure  # several values, or a character set to decode: pydicom's job
    return raw.decode("ascii").rstrip("\0 ")


def _file_meta(buf: bytes) -> tuple[int, dict[tuple[int, int], str]]:
    if buf[PREAMBLE : PREAMBLE + 4] != b"DICM":
        raise _Unsure
    pos = PREAMBLE + 4
    values: dict[tuple[int, int], str] = {}
    while pos + 8 <= len(buf) and _TAG.unpack_from(buf, pos)[0] == 0x0002:
        group, elem, _, start, length = _element(buf, pos, False)
        if length == UNDEFINED or start + length > len(buf):
            raise _Unsure
        if elem in (0x0002, 0x0003, 0x0010):
            values[(group, elem)] = _text(buf[start : start + length])
        pos = start + length
    if pos + 8 > len(buf):
        raise _Unsure
    return pos, values


def read_head(buf: bytes, *, whole: bool) -> FileHead | None:
    """The head of the file whose first bytes are `buf` (`whole`: buf is the entire file).

    None when pydicom should decide (see the module docstring)."""
    try:
        offset, meta = _file_meta(buf)
        syntax = meta.get((0x0002, 0x0010), "")
        uid = UID(syntax)
        if not uid.is_transfer_syntax or not uid.is_little_endian or uid.is_deflated:
            return None
        implicit = uid.is_implicit_VR
        found: dict[tuple[int, int], str] = {}
        pos = offset
        while pos < len(buf):
            if pos + 8 > len(buf):
                raise _Unsure
            group, elem, vr, start, length = _element(buf, pos, implicit)
            if (group, elem) > _IDENTITY_REMOVED:
                break
            if length == UNDEFINED:
                pos = _skip_items(buf, start, implicit or vr == b"UN")
                continue
            if (group, elem) in (_SOP_CLASS, _SOP_INSTANCE, _IDENTITY_REMOVED):
                if start + length > len(buf):
                    raise _Unsure
                found[(group, elem)] = _text(buf[start : start + length])
            pos = start + length
        else:
            if not whole or pos != len(buf):
                raise _Unsure  # the head goes on past the bytes we were given
    except (_Unsure, struct.error, UnicodeDecodeError):
        return None
    return FileHead(
        dataset_offset=offset,
        transfer_syntax_uid=syntax,
        media_sop_class_uid=meta.get((0x0002, 0x0002), ""),
        media_sop_instance_uid=meta.get((0x0002, 0x0003), ""),
        sop_class_uid=found.get(_SOP_CLASS),
        sop_instance_uid=found.get(_SOP_INSTANCE),
        identity_removed=found.get(_IDENTITY_REMOVED),
    )


def dataset_offset(buf: bytes) -> int | None:
    """Where the dataset starts after the file meta group, or None if `buf` doesn't say."""
    try:
        return _file_meta(buf)[0]
    except (_Unsure, struct.error, UnicodeDecodeError):
        return None
