"""Explicit VR Little Endian elements parsed from bytes into the very objects pydicom builds.

pydicom parses with a few small reads and Python around each element; here one loop walks a
bytes buffer with `struct.unpack_from`. Each step mirrors pydicom 3's `filereader`
(`data_element_generator`, `read_dataset`, `read_sequence`, `read_sequence_item`) and its
conversion of a raw sequence (`Dataset.__getitem__`, `convert_raw_data_element`, `convert_SQ`):
the same raw elements with the same offsets, sequences of undefined length parsed, the same
encodings and item attributes recorded. Whatever is not handled exactly like pydicom raises
`Unusual`, and the caller lets pydicom do it: unknown or lower-case VRs, undefined lengths other
than a sequence's, items in implicit VR, delimiters out of place, truncation, custom hooks.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom import config, hooks, values
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataelem import empty_value_for_VR as _empty_value
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from trialship.deid.datasets import new_dataset

HEADER = struct.Struct("<HH2sH")
LENGTH = struct.Struct("<L")
_ITEM = struct.Struct("<HHL")
VRS = {vr.value.encode("ascii"): vr.value for vr in VR}
LONG_VRS = frozenset(vr.value for vr in EXPLICIT_VR_LENGTH_32)
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
_CHARSET = 0x00080005
_ITEM_TAG = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
_RAW = RawDataElement
_new_tuple = tuple.__new__


_TAGS: dict[int, BaseTag] = {}
_MAX_TAGS = 1 << 16


def tag_key(tag: int) -> BaseTag:
    """The one BaseTag of `tag` that datasets parsed here are keyed by.

    A dict finds a key that *is* the key looked up without comparing: any other int or BaseTag
    equal to it is compared by BaseTag.__eq__, in Python, on every lookup.
    """
    key = _TAGS.get(tag)
    if key is None:
        key = BaseTag(tag)
        if len(_TAGS) < _MAX_TAGS:
            _TAGS[tag] = key
    return key


class Unusual(Exception):
    """Not the common case: pydicom does this one."""


def pydicom_as_shipped() -> bool:
    """True when no reading hook or converter was customised (only then is mirroring exact)."""
    return (
        not config.data_element_callback
        and bool(config.settings.infer_sq_for_un_vr)
        and not hooks.hooks.raw_element_kwargs
        and hooks.hooks.raw_element_vr is hooks.raw_element_vr
        and hooks.hooks.raw_element_value is hooks.raw_element_value
        and values.converters.get(VR.SQ) is values.convert_SQ
    )


def empty(vr: str) -> Any:
    return _empty_value(vr, raw=True)


def implicit_at(data: bytes, position: int, limit: int) -> bool:
    """pydicom's `_is_implicit_vr` test: the first element's VR bytes are not two capitals."""
    raw_vr = data[position + 4 : min(position + 6, limit)]
    if len(raw_vr) < 2:
        return False
    return not (0x40 < raw_vr[0] < 0x5B and 0x40 < raw_vr[1] < 0x5B)


def own_encoding(elements: dict[BaseTag, Any], parent: Any) -> Any:
    """The encoding `read_dataset` records: the dataset's own character set, else the parent's."""
    charset = elements.get(BaseTag(_CHARSET))
    if charset is None:
        return parent
    if not isinstance(charset, RawDataElement):
        raise Unusual
    return convert_encodings(convert_raw_data_element(charset).value)


def parse_elements(
    data: bytes,
    position: int,
    end: int,
    *,
    limit: int,
    encoding: Any,
    offset: int,
    top: bool = False,
    delimited: bool = False,
) -> tuple[dict[BaseTag, Any], int]:
    """The elements from `position`: up to `end` (a defined-length item), up to and after the
    item delimiter (`delimited`: an undefined-length item) or, at the `top` level, up to the pixel
    data or the end. Returns them and the position after them.

    `limit` is the end of the buffer pydicom reads from; `offset` is added to item positions.
    """
    elements: dict[BaseTag, Any] = {}
    stop = limit if delimited else end
    # Bound once: this loop runs for every element of every file.
    unpack_header, unpack_length, vr_of = HEADER.unpack_from, LENGTH.unpack_from, VRS.get
    tags_get = _TAGS.get
    previous = -1
    while position < stop:
        if position + 8 > stop:
            raise Unusual
        group, element, vr_bytes, length = unpack_header(data, position)
        tag = group << 16 | element
        if tag <= previous and tag != _ITEM_END:
            raise Unusual  # (out of order: a length misread before it; the walk says where)
        previous = tag
        if tag == _ITEM_END:
            if not delimited:
                raise Unusual
            return elements, position + 8
        vr = vr_of(vr_bytes)
        if vr is None:
            raise Unusual
        value_tell = position + 8
        if vr in LONG_VRS:
            (length,) = unpack_length(data, value_tell)  # pydicom reads it before stopping
            value_tell += 4
        if top and tag in PIXEL_TAGS:
            return elements, position
        key = tags_get(tag) or tag_key(tag)
        if length == UNDEFINED:
            if vr != "SQ":
                raise Unusual
            sequence, position = _undefined_sequence(data, value_tell, limit, encoding, offset)
            elements[key] = DataElement(key, vr, sequence, value_tell, is_undefined_length=True)
            continue
        if value_tell + length > stop:
            raise Unusual
        value = data[value_tell : value_tell + length] if length else empty(vr)
        if tag == _CHARSET:
            encoding = convert_encodings(values.convert_string(value or b"", True))
        # RawDataElement(key, vr, length, value, value_tell, False, True), without the Python
        # frame of the named tuple's __new__.
        elements[key] = _new_tuple(
            _RAW, (key, vr, length, value, value_tell, False, True, True, False)
        )
        position = value_tell + length
    if delimited:
        raise Unusual  # an undefined-length item that runs to the end of the data
    return elements, position


def _item(
    data: bytes, position: int, length: int, limit: int, encoding: Any, offset: int
) -> tuple[Dataset, int]:
    """One item whose tag is at `position`: `read_sequence_item`."""
    start = position + 8
    delimited = length == UNDEFINED
    implicit = implicit_at(data, start, limit)
    if implicit:
        # pydicom reads such an item as implicit VR: the same only when it is empty.
        empty_item = data[start : start + 4] == b"\xfe\xff\x0d\xe0" if delimited else not length
        if not empty_item:
            raise Unusual
    if not delimited and start + length > limit:
        raise Unusual
    elements, after = parse_elements(
        data,
        start,
        start + (0 if delimited else length),
        limit=limit,
        encoding=encoding,
        offset=offset,
        delimited=delimited,
    )
    item = new_dataset(Dataset, elements, encoding)
    state = item.__dict__  # plain attributes: what Dataset.__setattr__ sets for them
    state["_read_implicit"] = implicit
    state["_read_little"] = True
    state["_read_charset"] = own_encoding(elements, encoding)
    state["is_undefined_length_sequence_item"] = delimited
    state["seq_item_tell"] = state["file_tell"] = position + offset
    return item, after


def _undefined_sequence(
    data: bytes, position: int, limit: int, encoding: Any, offset: int
) -> tuple[Sequence, int]:
    """An undefined-length sequence's items, up to and after its delimiter."""
    items: list[Dataset] = []
    while True:
        if position + 8 > limit:
            raise Unusual
        group, element, length = _ITEM.unpack_from(data, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            sequence = Sequence(items)
            sequence.is_undefined_length = True
            return sequence, position + 8
        if tag != _ITEM_TAG:
            raise Unusual
        item, position = _item(data, position, length, limit, encoding, offset)
        items.append(item)


def _defined_sequence(data: bytes, encodings: Any, offset: int) -> Sequence:
    """A defined-length sequence's value (`convert_SQ`: positions within the value itself)."""
    items: list[Dataset] = []
    position, limit = 0, len(data)
    while position < limit:
        if position + 8 > limit:
            raise Unusual
        group, element, length = _ITEM.unpack_from(data, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM_TAG:
            raise Unusual
        item, position = _item(data, position, length, limit, encodings, offset)
        items.append(item)
    sequence = Sequence(items)
    sequence.is_undefined_length = False
    return sequence


def sequence_element(ds: Dataset, key: Any) -> Any:
    """`ds[key]` for a sequence element: a raw Explicit VR Little Endian sequence is converted
    here, into what pydicom's conversion gives; anything else is left to pydicom."""
    elem = ds._dict[key]
    if (
        isinstance(elem, RawDataElement)
        and elem.VR == "SQ"
        and isinstance(elem.value, bytes)
        and elem.length not in (0, UNDEFINED)
        and not elem.is_implicit_VR
        and elem.is_little_endian
        and pydicom_as_shipped()
    ):
        encodings = ds.original_character_set or ds._character_set or [default_encoding]
        if isinstance(encodings, str):
            encodings = [encodings]
        try:
            sequence = _defined_sequence(elem.value, encodings, elem.value_tell)
        except Exception:  # Unusual, or anything pydicom reports in its own way: let it convert
            return ds[key]
        tag = BaseTag(key)
        ds[tag] = DataElement(
            elem.tag, "SQ", sequence, elem.value_tell, False, already_converted=True
        )
        converted = ds[tag]
        ds._set_pixel_representation(converted)
        return converted
    return ds[key]


_NOT_A_SEQUENCE = DataElement(0x00080000, "UL", 0)


_PIXEL_REPRESENTATION = tag_key(0x00280103)


def as_if_sequence_converted(ds: Dataset) -> None:
    """What converting one of its sequences does to `ds` (pydicom reads its Pixel
    Representation), for a sequence whose conversion is skipped: the same elements stay raw.

    `Dataset._set_pixel_representation` (for an element that is not a sequence) once Pixel
    Representation is converted, or absent: it sets `_pixel_rep` from it, else from itself.
    """
    elem = ds._dict.get(_PIXEL_REPRESENTATION)
    state = ds.__dict__
    if elem is None:
        value = state.get("_pixel_rep")
    elif isinstance(elem, RawDataElement):
        ds._set_pixel_representation(_NOT_A_SEQUENCE)  # converts it (once)
        return
    else:
        value = elem.value
    if value is not None:
        state["_pixel_rep"] = int(b"\x01" in value) if isinstance(value, bytes) else value
