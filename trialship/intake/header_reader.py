"""A fast reader for the common header: Explicit VR Little Endian, parsed from the file's bytes
into the very objects pydicom's ``dcmread(fp, stop_before_pixels=True)`` builds.

pydicom reads each element with a few small file reads and Python around them; here one loop walks
a bytes buffer with `struct.unpack_from`. The result mirrors pydicom step by step (see
`pydicom.filereader.read_partial`, `read_dataset`, `data_element_generator`, `read_sequence`,
`read_sequence_item`): raw elements with the same offsets, sequences of undefined length parsed
(those of defined length stay raw, converted when first used, as pydicom does), the same encodings
recorded on every dataset, the same file meta elements converted. Anything this reader does not
handle exactly like pydicom returns None and pydicom reads the file: no preamble, implicit VR,
big endian, deflate, private transfer syntaxes, command sets, unknown or lower-case VRs, undefined
lengths other than a sequence's, items encoded as implicit VR, delimiters out of place, truncation.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR
from pydicom.values import convert_string

_HEADER = struct.Struct("<HH2sH")
_LENGTH = struct.Struct("<L")
_ITEM = struct.Struct("<HHL")
_VRS = {vr.value.encode("ascii"): vr.value for vr in VR}
_LONG = frozenset(vr.value for vr in EXPLICIT_VR_LENGTH_32)
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
_ITEM_TAG = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_NOT_EXPLICIT_LE = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
)


class _Unusual(Exception):
    """Not the common case: pydicom reads this file."""


def read_header(fp: io.BytesIO, data: bytes) -> FileDataset | None:
    """The header pydicom would read from `fp` (a buffer over `data`, positioned at 0), with
    `fp` left where pydicom would leave it (at the pixel data tag, or the end); None, with `fp`
    untouched, when pydicom must read it."""
    try:
        ds, position = _read(fp, data)
    except Exception:  # _Unusual, or anything pydicom may report in its own way: let it read
        return None
    fp.seek(position)
    return ds


def _read(fp: io.BytesIO, data: bytes) -> tuple[FileDataset, int]:
    if len(data) < 132 or data[128:132] != b"DICM":
        raise _Unusual
    if config.data_element_callback or not config.settings.infer_sq_for_un_vr:
        raise _Unusual  # custom reading hooks: only pydicom knows what they do
    meta_elements, start = _meta_elements(data)
    meta = Dataset(meta_elements, parent_encoding=default_encoding)
    meta.set_original_encoding(False, True, default_encoding)
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(
        is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding
    )
    if file_meta._dict:
        file_meta[min(file_meta._dict)]  # pydicom converts the first element (by tag) to test it
        if "FileMetaInformationGroupLength" in file_meta:
            file_meta.FileMetaInformationGroupLength  # noqa: B018 (pydicom reads it: converted)
    if start + 8 > len(data) or data[start : start + 2] == b"\0\0":
        raise _Unusual  # nothing after the file meta, or a command set
    syntax = file_meta.get("TransferSyntaxUID")
    if syntax is None or syntax in _NOT_EXPLICIT_LE or syntax in PrivateTransferSyntaxes:
        raise _Unusual
    if _implicit_at(data, start, len(data)):
        raise _Unusual  # pydicom would switch to implicit VR (with a warning)
    elements, end, _ = _elements(data, start, len(data), len(data), default_encoding, 0, True)
    dataset = Dataset(elements, parent_encoding=default_encoding)
    dataset.set_original_encoding(False, True, _own_encoding(elements, default_encoding))
    ds = FileDataset(fp, dataset, data[:128], file_meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds, end


def _meta_elements(data: bytes) -> tuple[dict[BaseTag, Any], int]:
    """Group 0002 from offset 132: explicit VR little endian, defined lengths only."""
    elements: dict[BaseTag, Any] = {}
    position = 132
    if _implicit_at(data, position, len(data)) and data[position : position + 2] == b"\2\0":
        raise _Unusual
    while position + 8 <= len(data):
        group, element, vr_bytes, length = _HEADER.unpack_from(data, position)
        if group != 2:
            return elements, position
        vr = _VRS.get(vr_bytes)
        if vr is None:
            raise _Unusual
        value_tell = position + 8
        if vr in _LONG:
            (length,) = _LENGTH.unpack_from(data, value_tell)
            value_tell += 4
        if length == _UNDEFINED or value_tell + length > len(data):
            raise _Unusual
        tag = BaseTag(group << 16 | element)
        value = data[value_tell : value_tell + length] if length else _empty(vr)
        elements[tag] = RawDataElement(tag, vr, length, value, value_tell, False, True)
        position = value_tell + length
    raise _Unusual  # the file ends inside or right after the file meta


def _implicit_at(data: bytes, position: int, limit: int) -> bool:
    """pydicom's `_is_implicit_vr` test: the first element's VR bytes are not two capitals."""
    raw_vr = data[position + 4 : min(position + 6, limit)]
    if len(raw_vr) < 2:
        return False
    return not (0x40 < raw_vr[0] < 0x5B and 0x40 < raw_vr[1] < 0x5B)


def _empty(vr: str) -> Any:
    return empty_value_for_VR(vr, raw=True)


def _own_encoding(elements: dict[BaseTag, Any], parent: Any) -> Any:
    """The encoding `read_dataset` records: the dataset's own character set, else the parent's."""
    charset = elements.get(BaseTag(0x00080005))
    if charset is None:
        return parent
    if not isinstance(charset, RawDataElement):
        raise _Unusual
    from pydicom.dataelem import convert_raw_data_element

    return convert_encodings(convert_raw_data_element(charset).value)


def _elements(
    data: bytes,
    position: int,
    end: int,
    limit: int,
    encoding: Any,
    offset: int,
    top: bool,
) -> tuple[dict[BaseTag, Any], int, bool]:
    """Elements from `position` up to `end` (a defined-length item), the item delimiter (an
    undefined-length item: `end` is `limit`) or, at the top level, the pixel data.

    Returns the elements, the position after them, and whether an item delimiter ended them.
    `limit` is the end of the buffer pydicom reads from; `offset` is added to item positions.
    """
    elements: dict[BaseTag, Any] = {}
    while position < end:
        if position + 8 > end:
            raise _Unusual
        group, element, vr_bytes, length = _HEADER.unpack_from(data, position)
        tag = group << 16 | element
        if tag == _ITEM_END:
            if top or end != limit:
                raise _Unusual
            return elements, position + 8, True
        vr = _VRS.get(vr_bytes)
        if vr is None:
            raise _Unusual
        value_tell = position + 8
        if vr in _LONG:
            (length,) = _LENGTH.unpack_from(data, value_tell)  # pydicom too reads it first
            value_tell += 4
        if top and tag in _PIXEL_TAGS:
            return elements, position, False
        key = BaseTag(tag)
        if length == _UNDEFINED:
            if vr != "SQ":
                raise _Unusual
            sequence, position = _sequence(data, value_tell, limit, encoding, offset)
            elements[key] = DataElement(key, vr, sequence, value_tell, is_undefined_length=True)
            continue
        if value_tell + length > end:
            raise _Unusual
        value = data[value_tell : value_tell + length] if length else _empty(vr)
        if tag == 0x00080005:
            encoding = convert_encodings(convert_string(value or b"", True))
        elements[key] = RawDataElement(key, vr, length, value, value_tell, False, True)
        position = value_tell + length
    if top:
        return elements, position, False
    if end == limit:
        raise _Unusual  # an undefined-length item that runs to the end of the data
    return elements, position, False


def _sequence(
    data: bytes, position: int, limit: int, encoding: Any, offset: int
) -> tuple[Sequence, int]:
    """An undefined-length sequence's items, up to and after its delimiter."""
    items: list[Dataset] = []
    while True:
        if position + 8 > limit:
            raise _Unusual
        group, element, length = _ITEM.unpack_from(data, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            sequence = Sequence(items)
            sequence.is_undefined_length = True
            return sequence, position + 8
        if tag != _ITEM_TAG:
            raise _Unusual
        item_tell = position + offset
        start = position + 8
        if _implicit_at(data, start, limit):
            # pydicom reads such an item as implicit VR: fine when it is empty, else unusual.
            empty = (
                data[start : start + 4] == b"\xfe\xff\x0d\xe0"
                if length == _UNDEFINED
                else not length
            )
            if not empty:
                raise _Unusual
            implicit = True
        else:
            implicit = False
        if length == _UNDEFINED:
            elements, position, ended = _elements(
                data, start, limit, limit, encoding, offset, False
            )
            if not ended:
                raise _Unusual
        else:
            if start + length > limit:
                raise _Unusual
            elements, position, _ = _elements(
                data, start, start + length, limit, encoding, offset, False
            )
        item = Dataset(elements, parent_encoding=encoding)
        item.set_original_encoding(implicit, True, _own_encoding(elements, encoding))
        item.is_undefined_length_sequence_item = length == _UNDEFINED
        item.seq_item_tell = item_tell
        item.file_tell = item_tell
        items.append(item)
