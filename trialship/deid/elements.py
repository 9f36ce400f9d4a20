"""Low-level element access that never loads bulk pixel data."""

from __future__ import annotations

import functools
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_keyword, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

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
    if elem is None or not elem.is_raw:
        return None
    value = elem.value
    if value is None:
        return []
    if not isinstance(value, bytes) or not value.isascii():
        return None
    text = value.decode("ascii")
    if vr in SINGLE_TEXT_VRS:
        stripped = text.rstrip(" \0")
        return [stripped] if stripped else []
    if not text.strip(" \0"):
        return []
    return [part.strip(" \0") for part in text.split("\\")]


def new_element(tag: int, vr: str, value: Any) -> DataElement:
    """An element the engine writes: its values fit their VR, so pydicom's checks are skipped."""
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def vr_of(ds: Dataset, tag: int) -> str:
    """The VR of an element without converting a raw (still encoded) element."""
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr and vr != "UN":
        return str(vr).split(" ")[0]
    if tag >> 16 & 1:
        return str(vr or "UN")
    return dictionary_vr(tag)
