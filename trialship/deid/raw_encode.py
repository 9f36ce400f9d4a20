"""Elements encoded back to bytes: raw (unchanged) elements from their original bytes, plain
ASCII text directly, the rest by pydicom; sequences and items always of undefined length.

The counterpart of `raw_parse`. The header writer (`trialship.intake.dicom_stream`) encodes
whole data sets with it; the walk (`strict=True`) encodes a walked sequence's items once, so
that the same sequence in the next file of a subject is put back as those bytes
(`EncodedSequence`) instead of being parsed, walked and encoded again.
"""

from __future__ import annotations

import struct
from typing import Any, cast

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue

from trialship.deid.elements import value_of
from trialship.deid.raw_parse import tag_key

LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
UNDEFINED = 0xFFFFFFFF
# Per byte order: packers of the implicit, explicit short and explicit long element headers.
_PACKERS = {
    order: (
        struct.Struct(order + "HHL").pack,
        struct.Struct(order + "HH2sH").pack,
        struct.Struct(order + "HH2sHL").pack,
    )
    for order in "<>"
}
_SHORT_VR_BYTES = {
    vr: vr.encode("ascii")
    for vr in (
        *("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH"),
        *("SL", "SS", "ST", "SV", "TM", "UI", "UL", "US", "UV"),
    )
}
"""The VRs of an explicit header with a 16-bit length (PS3.5 Table 7.1-2)."""
_PLAIN_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_SEQUENCE_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
_CHARSET = tag_key(0x00080005)


class NotEncodable(Exception):
    """Strict encoding met an element only pydicom writes (its bytes depend on the encoding)."""


class EncodedSequence(RawDataElement):
    """A walked sequence held as its encoded items (Explicit VR Little Endian, the bytes between
    its header and its delimiter, as `write_sequence` writes them).

    pydicom converts it like any raw sequence (into the same items); the writer writes the
    bytes as they are.
    """

    __slots__ = ()


def encoded_sequence(tag: int, items: bytes, value_tell: int) -> EncodedSequence:
    flags = (False, True, True, False)  # explicit VR, little endian, raw, not buffered
    return EncodedSequence(tag_key(tag), "SQ", UNDEFINED, items, value_tell, *flags)


def raw_header(elem: RawDataElement, implicit: bool, order: str) -> bytes | None:
    """The encoded tag+VR+length of a raw element, or None to let pydicom write it."""
    value = elem.value
    length = len(value) if value is not None else 0
    if elem.length == UNDEFINED or elem.is_buffered:
        return None
    tag = elem.tag
    implicit_header, short_header, long_header = _PACKERS[order]
    if implicit:
        return implicit_header(tag >> 16, tag & 0xFFFF, length)
    vr = elem.VR
    if not vr or len(vr) != 2 or vr == "SQ":
        return None
    encoded = vr.encode("ascii")
    if encoded in LONG_VRS:
        return long_header(tag >> 16, tag & 0xFFFF, encoded, 0, length)
    if length > 0xFFFF:
        return None
    return short_header(tag >> 16, tag & 0xFFFF, encoded, length)


def plain_value(elem: Any) -> bytes | None:
    """The encoded value of a converted element holding ASCII text, or None to let pydicom."""
    if elem.VR not in _PLAIN_TEXT_VRS:
        return None
    value = elem.value
    if value is None:
        return b""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple | MultiValue):
        text = "\\".join(str(item) for item in value)
    elif elem.VR == "PN":
        text = str(value)
    else:
        return None
    if not text.isascii():
        return None
    data = text.encode("ascii")
    if len(data) % 2:
        data += b"\0" if elem.VR == "UI" else b" "
    return data


def sorted_keys(ds: Dataset) -> list[Any]:
    """The dataset's own tag keys in tag order (the keys themselves: lookups by identity)."""
    return sorted(ds._dict, key=int)


def write_elements(
    out: DicomBytesIO,
    ds: Dataset,
    tags: list[Any],
    implicit: bool,
    order: str,
    encodings: Any = None,
    *,
    strict: bool = False,
) -> None:
    """Write the elements `tags` of `ds`. `strict` raises NotEncodable instead of letting
    pydicom write or read an element: what is written then does not depend on the encodings."""
    encodings = value_of(ds, _CHARSET) or encodings or "iso8859"
    elems = ds._dict
    write = out.write
    short_header = _PACKERS[order][1]
    short_vr = _SHORT_VR_BYTES.get
    for tag in tags:
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths go stale
        elem: Any = elems[tag]
        if elem.__class__ is RawDataElement and not implicit:
            # Most elements: raw, a 16-bit length (`raw_header`), the fields read at once.
            _, vr, length, value, _, _, _, is_raw, buffered = elem
            vr_bytes = short_vr(vr or "")
            if (
                vr_bytes is not None
                and is_raw
                and value is not None
                and not buffered
                and length != UNDEFINED
                and len(value) <= 0xFFFF
            ):
                write(short_header(tag >> 16, tag & 0xFFFF, vr_bytes, len(value)))
                write(value)
                continue
        if elem.is_raw and elem.value is None:
            if strict:
                raise NotEncodable
            elem = ds[tag]  # a deferred read (what get_item does)
        if elem.is_raw:
            vr = elem.VR
            if vr in _SHORT_VR_BYTES and not implicit and not elem.is_buffered:
                # `raw_header` of the common element, inline: it runs for most of them.
                value = elem.value
                if elem.length != UNDEFINED and len(value) <= 0xFFFF:
                    write(short_header(tag >> 16, tag & 0xFFFF, _SHORT_VR_BYTES[vr], len(value)))
                    write(value)
                    continue
            if elem.__class__ is EncodedSequence and not implicit and order == "<":
                write(_PACKERS[order][2](tag >> 16, tag & 0xFFFF, b"SQ", 0, UNDEFINED))
                write(cast(bytes, elem.value))
                write(_SEQUENCE_END)
                continue
            header = raw_header(elem, implicit, order)
            if header is not None:
                write(header)
                write(elem.value)
                continue
            if strict:
                raise NotEncodable
            elem = ds[tag]  # an odd raw element (no VR, undefined length): let pydicom decide
        if elem.VR == "SQ":
            write_sequence(out, elem, implicit, order, encodings, strict=strict)
            continue
        data = plain_value(elem)
        if data is None:
            data = _number(elem, order) if not implicit else None
            if data is None:
                _by_pydicom(out, elem, encodings, strict)
                continue
        vr = elem.VR.encode("ascii")
        if implicit:
            write(struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, len(data)))
        elif vr in LONG_VRS:
            write(struct.pack(order + "HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, len(data)))
        elif len(data) <= 0xFFFF:
            write(struct.pack(order + "HH2sH", tag >> 16, tag & 0xFFFF, vr, len(data)))
        else:
            _by_pydicom(out, elem, encodings, strict)
            continue
        write(data)


def _number(elem: Any, order: str) -> bytes | None:
    """What pydicom's `write_numbers` writes for one integer of a 16 or 32-bit integer VR (a
    converted Pixel Representation, say), or None: pydicom writes the rest."""
    fmt = _INTEGER_FORMATS.get(elem.VR)
    value = elem.value
    if fmt is None or value.__class__ is not int:
        return None
    try:
        return struct.pack(order + fmt, value)
    except struct.error:
        return None  # out of range: pydicom says so


_INTEGER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l"}


def _by_pydicom(out: DicomBytesIO, elem: Any, encodings: Any, strict: bool) -> None:
    if strict:
        raise NotEncodable
    write_data_element(out, elem, encodings)


def write_sequence(
    out: DicomBytesIO, elem: Any, implicit: bool, order: str, encodings: Any, *, strict: bool
) -> None:
    tag = elem.tag
    write = out.write
    if implicit:
        write(struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, UNDEFINED))
    else:
        write(struct.pack(order + "HH2sHL", tag >> 16, tag & 0xFFFF, b"SQ", 0, UNDEFINED))
    write_items(out, elem.value or (), implicit, order, encodings, strict=strict)
    write(struct.pack(order + "HHL", 0xFFFE, 0xE0DD, 0))


def write_items(
    out: DicomBytesIO, items: Any, implicit: bool, order: str, encodings: Any, *, strict: bool
) -> None:
    write = out.write
    for item in items:
        write(struct.pack(order + "HHL", 0xFFFE, 0xE000, UNDEFINED))
        write_elements(out, item, sorted_keys(item), implicit, order, encodings, strict=strict)
        write(struct.pack(order + "HHL", 0xFFFE, 0xE00D, 0))


def encode_items(items: Any) -> bytes | None:
    """The items of a sequence as `write_sequence` writes them in Explicit VR Little Endian,
    whatever the character set; None when that depends on it (see `write_elements`)."""
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = False, True
    try:
        write_items(out, items, False, "<", None, strict=True)
    except NotEncodable:
        return None
    return bytes(out.getvalue())
