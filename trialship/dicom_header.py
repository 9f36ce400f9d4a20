"""Read a handful of header values straight from a DICOM file's bytes, stopping early.

A disc needs about twenty values per file, all in groups 0008-0020; a sender needs the SOP
class and instance, PatientIdentityRemoved and where the dataset starts. pydicom's `dcmread`
(even with `stop_before_pixels` and `specific_tags`) builds a Dataset element by element and
costs about a millisecond per file (a third of a whole disc build, most of a package's);
this reader walks the raw elements, keeps the wanted values as bytes and stops at the first
tag past the last one asked for (always before the pixel data), in a few tens of
microseconds. Pure: used by `media` (DICOMDIR records) and `transfer` (the guard, C-STORE).

It reads what the de-identification engine and every modality write: Explicit and Implicit VR
Little Endian and the encapsulated (compressed) syntaxes, sequences of defined and undefined
length. Anything else (Big Endian, Deflated, a malformed element) raises `Unsupported`, and the
caller reads the file with pydicom instead, so an odd file costs time, never correctness.
Values are turned into text exactly as `str(pydicom_value).strip()` would: plain ASCII directly,
anything else (other character sets, multiple values) through pydicom's own converters.
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import BinaryIO

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from pydicom.values import convert_value

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
SPECIFIC_CHARACTER_SET = 0x00080005
_TRANSFER_SYNTAX = 0x00020010
_MEDIA_SOP_CLASS = 0x00020002
_MEDIA_SOP_INSTANCE = 0x00020003
_NOT_LITTLE_ENDIAN_EXPLICIT = frozenset(
    {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}  # Big Endian, Deflated
)
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN"}
    | {b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US", b"SV", b"UV"}
)
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_GROUP = 0x7FE0
_FIRST_READ = 16384
_HEAD = struct.Struct("<HH2sH")
_TAG_LENGTH = struct.Struct("<II")
_LENGTH = struct.Struct("<I")


class NotDicom(Exception):
    """No 128-byte preamble followed by "DICM": not a DICOM file (PS3.10 7.1)."""


class Unsupported(Exception):
    """The file is DICOM but not in a form this reader handles; read it with pydicom."""


@dataclass(frozen=True)
class RawHeader:
    """The wanted elements of one file, as (VR, value bytes) by tag."""

    transfer_syntax_uid: str
    media_sop_class_uid: str
    values: dict[int, tuple[str, bytes]] = field(repr=False)
    media_sop_instance_uid: str = ""
    dataset_offset: int = 0  # where the dataset starts, after the file meta group

    def text(self, tag: int, *, shared: bool = True) -> str:
        """The value as `str(value).strip()` of pydicom would give it ('' when absent).

        A `shared` value is interned: the files of a study repeat most values (its UID, dates,
        IDs), and a disc's records hold them for every file. A value unique to each file (its
        SOP Instance UID) is not: the interpreter's table would only grow by one entry a file.
        """
        found = self.values.get(tag)
        if found is None:
            return ""
        vr, raw = found
        if raw.isascii() and b"\\" not in raw and b"\x1b" not in raw:
            text = raw.decode("ascii").rstrip("\x00 ").strip()
            return sys.intern(text) if shared else text
        value = self._convert(tag, vr, raw)
        return "" if value is None else str(value).strip()

    def number(self, tag: int) -> int | None:
        """An IS value as int, None when absent or empty; ValueError when not a number."""
        text = self.text(tag)
        if not text:
            return None
        if text.isdigit():
            return int(text)
        found = self.values[tag]
        value = self._convert(tag, *found)
        return None if value is None or str(value).strip() == "" else int(str(value))

    def _convert(self, tag: int, vr: str, raw: bytes) -> object:
        charset = self.values.get(SPECIFIC_CHARACTER_SET)
        encodings = None
        if charset is not None:
            names = charset[1].decode("ascii", "replace").rstrip("\x00 ").split("\\")
            encodings = convert_encodings([n.strip() for n in names])
        element = RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, False, True)
        return convert_value(vr, element, encodings)


def read_raw_header(path: Path | str, tags: Collection[int]) -> RawHeader:
    """The elements `tags` of the file's main dataset (top level only) plus its File Meta
    transfer syntax and SOP class. Raises NotDicom, Unsupported, or OSError from reading."""
    wanted = frozenset(tags) | {SPECIFIC_CHARACTER_SET}
    stop = max(wanted)
    if stop >> 16 >= _PIXEL_GROUP:
        raise ValueError("the raw reader stops before the pixel data group")
    with open(path, "rb", buffering=0) as fp:
        reader = _Reader(fp)
        if len(reader.take(132, eof_ok=True)) < 132 or reader.last[128:132] != b"DICM":
            raise NotDicom(f"{path} has no DICOM preamble")
        meta = _walk_meta(reader)
        offset = reader.offset + reader.pos
        syntax = sys.intern(_uid(meta.get(_TRANSFER_SYNTAX)))  # (a few values for all files)
        if not syntax or syntax in _NOT_LITTLE_ENDIAN_EXPLICIT:
            raise Unsupported(f"transfer syntax {syntax or 'missing'}")
        values: dict[int, tuple[str, bytes]] = {}
        _walk(reader, explicit=syntax != IMPLICIT_VR_LE, wanted=wanted, stop=stop, into=values)
    return RawHeader(
        syntax,
        sys.intern(_uid(meta.get(_MEDIA_SOP_CLASS))),
        values,
        media_sop_instance_uid=_uid(meta.get(_MEDIA_SOP_INSTANCE)),
        dataset_offset=offset,
    )


def dataset_offset(head: bytes) -> int | None:
    """Where the dataset starts in a file whose first bytes are `head` (after the file meta
    group), or None when `head` is not DICOM Part 10 or ends inside the file meta."""
    reader = _Reader(io.BytesIO(head))
    if len(reader.take(132, eof_ok=True)) < 132 or reader.last[128:132] != b"DICM":
        return None
    try:
        _walk_meta(reader)
    except (Unsupported, struct.error):
        return None
    offset = reader.offset + reader.pos
    # The meta group must be followed by an element of the dataset within `head`.
    return offset if offset + 8 <= len(head) else None


def _uid(found: tuple[str, bytes] | None) -> str:
    return "" if found is None else found[1].decode("ascii", "replace").rstrip("\x00 ").strip()


class _Reader:
    """Sequential reads from a file through one growing buffer; long skips seek instead."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.buf = b""
        self.pos = 0
        self.offset = 0  # file offset of buf[0]
        self.last = b""

    def take(self, n: int, *, eof_ok: bool = False) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            self._fill(n)
            end = self.pos + n
            if end > len(self.buf) and not eof_ok:
                raise Unsupported("the file ends inside an element")
        self.last = self.buf[self.pos : end]
        self.pos = min(end, len(self.buf))
        return self.last

    def skip(self, n: int) -> None:
        if self.pos + n <= len(self.buf):
            self.pos += n
            return
        target = self.offset + self.pos + n
        self.fp.seek(target)
        self.offset, self.buf, self.pos = target, b"", 0

    def _fill(self, n: int) -> None:
        rest = self.buf[self.pos :]
        more = self.fp.read(max(_FIRST_READ, n - len(rest), len(self.buf)))
        self.offset += self.pos
        self.buf, self.pos = rest + (more or b""), 0


def _walk_meta(reader: _Reader) -> dict[int, tuple[str, bytes]]:
    """Group 0002, always Explicit VR Little Endian (PS3.10 7.1)."""
    meta: dict[int, tuple[str, bytes]] = {}
    while True:
        head = reader.take(8, eof_ok=True)
        if len(head) < 8:
            return meta
        group = head[0] | head[1] << 8
        if group != 2:
            reader.pos -= 8  # the first element of the dataset: read it again there
            return meta
        _walk_one(reader, head, explicit=True, wanted=_META_TAGS, into=meta)


_META_TAGS = frozenset({_TRANSFER_SYNTAX, _MEDIA_SOP_CLASS, _MEDIA_SOP_INSTANCE})


def _walk(
    reader: _Reader,
    *,
    explicit: bool,
    wanted: frozenset[int],
    stop: int,
    into: dict[int, tuple[str, bytes]],
) -> None:
    while True:
        head = reader.take(8, eof_ok=True)
        if len(head) < 8:
            return  # end of file: a file without pixel data
        group, element = head[0] | head[1] << 8, head[2] | head[3] << 8
        if (group << 16 | element) > stop:
            return
        _walk_one(reader, head, explicit=explicit, wanted=wanted, into=into)


def _walk_one(
    reader: _Reader,
    head: bytes,
    *,
    explicit: bool,
    wanted: frozenset[int],
    into: dict[int, tuple[str, bytes]],
) -> None:
    """Read (or skip) the element whose first 8 bytes are `head`."""
    group, element, vr_bytes, short_length = _HEAD.unpack(head)
    tag = group << 16 | element
    if explicit:
        if vr_bytes in _LONG_VRS:
            (length,) = _LENGTH.unpack(reader.take(4))
        elif vr_bytes in _SHORT_VRS:
            length = short_length
        else:
            raise Unsupported(f"unknown VR {vr_bytes!r} at ({group:04X},{element:04X})")
        vr = vr_bytes.decode("ascii")
    else:
        (length,) = _LENGTH.unpack_from(head, 4)
        vr = _implicit_vr(tag)
    if length == _UNDEFINED:
        # A sequence (or UN / private data with undefined length): items up to the delimiter.
        # Inside UN the items are Implicit VR (PS3.5 6.2.2).
        _skip_items(reader, explicit=explicit and vr != "UN")
        return
    if tag in wanted:
        into[tag] = (vr, reader.take(length))
    else:
        reader.skip(length)


def _skip_items(reader: _Reader, *, explicit: bool) -> None:
    while True:
        tag, length = _TAG_LENGTH.unpack(reader.take(8))
        tag = (tag & 0xFFFF) << 16 | tag >> 16
        if tag == _SEQUENCE_END:
            return
        if tag != _ITEM:
            raise Unsupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) where an item belongs")
        if length != _UNDEFINED:
            reader.skip(length)
            continue
        while True:  # an item of undefined length: elements up to the item delimiter
            head = reader.take(8)
            if head[:4] == b"\xfe\xff\x0d\xe0":
                break
            _walk_one(reader, head, explicit=explicit, wanted=frozenset(), into={})


@cache
def _implicit_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    # Ambiguous VRs ("US or SS", "OB or OW") do not matter for the text keys read here.
    return vr.split(" ")[0]
