"""Low-level element access that never loads bulk pixel data."""

from __future__ import annotations

import functools
import struct
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_keyword, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from trialship.deid.raw_parse import tag_key

# Pixel data and its float variants: never converted, scanned or changed by the engine.
BULK_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
# Free text a person may type into (PS3.5 6.2); AE included because site staff name AE titles.
TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
# Attributes of coded concepts (PS3.3 Table 8.8-1): controlled terminology, not free text.
CODE_KEYWORDS = frozenset(
    {
        "CodeValue",
        "CodingSchemeDesignator",
        "CodingSchemeVersion",
        "CodeMeaning",
        "LongCodeValue",
        "URNCodeValue",
        "ContextIdentifier",
        "ContextUID",
        "MappingResource",
        "ContextGroupVersion",
        "ContextGroupExtensionFlag",
        "ContextGroupLocalVersion",
        "ContextGroupExtensionCreatorUID",
    }
)


@functools.lru_cache(maxsize=4096)
def dictionary_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    # Ambiguous VRs ("US or SS", "OB or OW") are read as the first; good enough to classify.
    return vr.split(" ")[0]


@functools.lru_cache(maxsize=4096)
def keyword_of(tag: int) -> str:
    try:
        return dictionary_keyword(tag)
    except KeyError:
        return ""


# VRs whose raw value is one text value: a backslash in it is text, not a value separator.
SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})


def raw_text_values(ds: Dataset, tag: int, vr: str) -> list[str] | None:
    """The text values of a still-raw ASCII element, decoded the way pydicom would (split on
    backslashes, padding stripped), without converting it; None when it is not raw ASCII text."""
    elem = ds.get_item(tag)
    if elem is None:
        return None
    return raw_values(elem, vr)


def raw_values(elem: Any, vr: str) -> list[str] | None:
    """`raw_text_values` of an element already in hand (None when it is not raw ASCII text)."""
    if not elem.is_raw:
        return None
    value = elem.value
    if value is None:
        return None  # a deferred read: only conversion knows the value
    if not isinstance(value, bytes) or not value.isascii():
        return None
    text = value.decode("ascii")
    if vr in SINGLE_TEXT_VRS:
        stripped = text.rstrip(" \0")
        return [stripped] if stripped else []
    if not text.strip(" \0"):
        return []
    return [part.strip(" \0") for part in text.split("\\")]


def canonical_text(elem: Any, vr: str) -> str | None:
    """The one text value of a raw ASCII element whose bytes are exactly what writing that value
    gives (`encoded_text`): converting it and writing it back would change nothing, so it can
    stay raw. None for anything else."""
    if elem is None or elem.__class__ is not RawDataElement or vr != elem.VR:
        return None
    values = raw_values(elem, vr)
    if values is None or len(values) != 1 or encoded_text(vr, values[0]) != elem.value:
        return None
    return values[0]


def new_element(tag: int, vr: str, value: Any) -> DataElement | RawDataElement:
    """An element the engine writes: its values fit their VR, so pydicom's checks are skipped.

    Plain ASCII text is stored already encoded, as pydicom stores what it reads (a raw element):
    building a DataElement costs more than the rest of writing it, and reading the raw element
    back converts it to the same value (`encoded_text`). Anything else is a DataElement.
    """
    data = encoded_text(vr, value)
    if data is None:
        return DataElement(tag, vr, value, validation_mode=config.IGNORE)
    return RawDataElement(tag_key(tag), vr, len(data), data, 0, False, True)


def encoded_text(vr: str, value: Any) -> bytes | None:
    """The bytes pydicom would write for a text value, when converting them back gives the same
    value under every character set: ASCII, no escape (ISO 2022), no backslash inside a value,
    no padding characters at the edges, no empty UID. None for anything else."""
    if vr not in _STRING_VRS:
        return None
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, list | tuple) and vr not in SINGLE_TEXT_VRS and value:
        values = list(value)
    else:
        return None
    for item in values:
        if (
            not isinstance(item, str)
            or not item.isascii()
            or "\\" in item
            or "\x1b" in item
            or item != item.strip(" \0")
            or (vr == "UI" and not item)
        ):
            return None
    data = "\\".join(values).encode("ascii")
    if len(data) % 2:
        data += b"\0" if vr == "UI" else b" "
    return data


def vr_of(ds: Dataset, tag: int) -> str:
    """The VR of an element without converting a raw (still encoded) element."""
    return vr_for(ds.get_item(tag), tag)


def vr_for(raw: Any, tag: int) -> str:
    """`vr_of` for an element already in hand."""
    vr = getattr(raw, "VR", None)
    if vr and vr != "UN":
        return str(vr).split(" ")[0]
    if tag >> 16 & 1:
        return str(vr or "UN")
    return dictionary_vr(tag)


# String VRs whose ASCII bytes pydicom decodes to the same text under every character set.
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)


@functools.lru_cache(maxsize=512)
def _tag_of(keyword: str) -> BaseTag | None:
    tag = tag_for_keyword(keyword)
    return None if tag is None else tag_key(tag)


def raw_string_values(ds: Dataset, keyword: str) -> list[str] | None:
    """The values of a still-raw ASCII string element, stripped, read without converting it
    (a converted element is written back re-encoded); [] when absent; None when only pydicom
    can tell (converted, non-ASCII, ISO 2022 escapes, not a string VR)."""
    tag = _tag_of(keyword)
    if tag is None:
        return None
    elem = ds._dict.get(tag)
    if elem is None:
        return []
    if not elem.is_raw:
        return None
    value = elem.value
    vr = elem.VR or dictionary_vr(tag)
    if vr not in _STRING_VRS or not isinstance(value, bytes) or b"\x1b" in value:
        return None
    return raw_values(elem, vr)


def value_of(ds: Dataset, tag: BaseTag) -> Any:
    """`ds.get(keyword)` by the keyword's tag (`tag_key`): the value, None when absent; a raw
    element is converted in place, as `ds.get` does. Without `ds.get`'s keyword lookups."""
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    return (ds[tag] if isinstance(elem, RawDataElement) else elem).value


def text_value(ds: Dataset, keyword: str) -> str:
    """`str(ds.get(keyword)).strip()` ("" when absent or empty), without converting a raw
    single-valued ASCII string element."""
    raw = raw_string_values(ds, keyword)
    if raw is not None and len(raw) <= 1:
        return raw[0].strip() if raw else ""
    tag = _tag_of(keyword)
    number = None if tag is None else _plain_integer(ds._dict.get(tag))
    if number is not None:
        return number
    value = ds.get(keyword) if tag is None else value_of(ds, tag)
    return str(value).strip() if value not in (None, "") else ""


def unsigned_short(ds: Dataset, keyword: str) -> int | None:
    """The first value of a US element (Rows, BitsAllocated), read from its raw bytes without
    converting it (a converted element is written back re-encoded); None when absent, empty or
    only pydicom can tell (converted already, another VR)."""
    tag = _tag_of(keyword)
    elem = None if tag is None else ds._dict.get(tag)
    if elem is None or elem.__class__ is not RawDataElement or (elem.VR or "US") != "US":
        return None
    value = elem.value
    if value.__class__ is not bytes or len(value) < 2:
        return None
    (number,) = struct.unpack_from("<H" if elem.is_little_endian else ">H", value)
    return int(number)


def _plain_integer(elem: Any) -> str | None:
    """The text of a raw IS element holding one small unsigned integer whose bytes are what
    pydicom writes for it once converted (the stripped digits, padded): it can stay raw."""
    if elem is None or elem.__class__ is not RawDataElement or elem.VR != "IS":
        return None
    value = elem.value
    if value.__class__ is not bytes or not value.isascii():
        return None
    text = value.decode("ascii")
    digits = text.strip()
    if not digits.isdigit() or len(digits) > 9 or digits + " " * (len(digits) % 2) != text:
        return None
    return digits
