"""The original identifying values of an instance, gathered before de-identification.

The leak check looks for them in the output and the text cleaner redacts them. An `Identifiers`
holds PHI: keep it in memory for the run, never log or store it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from trialship.deid.elements import BULK_TAGS, raw_string_values, vr_of
from trialship.deid.raw_parse import as_if_sequence_converted, sequence_element, tag_key
from trialship.deid.rules import Action, load_table
from trialship.deid.values import DUMMY_DATE

# Name particles and titles too common to mean anything on their own.
_NAME_NOISE = frozenset({"mrs", "miss", "the", "von", "van", "der", "den", "del", "jr.", "sr."})
_MIN_NAME_PART = 3
_MIN_ID = 4
_MIN_PHONE_DIGITS = 7
_MIN_ADDRESS_PART = 5

_ID_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "AdmissionID",
    "MedicalRecordLocator",
)
_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ResponsiblePerson",
)
_OTHER_IDS = tag_key(0x00101002)  # OtherPatientIDsSequence
_INSTITUTION_KEYWORDS = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")
_OTHER_KEYWORDS = ("PatientAddress", "PatientTelephoneNumbers", "PatientBirthDate")
_READ_TAGS = tuple(
    tag_key(tag_for_keyword(keyword) or 0)
    for keyword in _NAME_KEYWORDS + _ID_KEYWORDS + _INSTITUTION_KEYWORDS + _OTHER_KEYWORDS
)


@dataclass(frozen=True)
class Identifiers:
    """Lower-cased original values, grouped by how they are matched (see leak.py)."""

    name_parts: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    short_ids: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    institutions: frozenset[str] = frozenset()
    uids: frozenset[str] = field(default=frozenset(), repr=False)
    allowed: frozenset[str] = frozenset()
    """Trial values written on purpose (subject ID, site name...): masked before matching, in
    the attributes they are written into (`written`) only."""
    written: frozenset[str] = frozenset()
    """Keywords of the attributes the engine writes the trial's values into: elsewhere an
    original value that contains a trial value (a hospital in a town the site is named after)
    is still found."""


def _values(ds: Dataset, keyword: str) -> list[str]:
    raw = raw_string_values(ds, keyword)
    if raw is not None:
        # Read from the raw bytes: converting would also re-encode an element that is kept.
        return [text.strip() for text in raw if text.strip()]
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def _other_ids(ds: Dataset) -> Any:
    """The items of OtherPatientIDsSequence (`ds.get`, with the fast sequence conversion)."""
    if _OTHER_IDS not in ds._dict:
        return ()
    return sequence_element(ds, _OTHER_IDS).value or ()


def name_parts(value: str) -> set[str]:
    """Parts of a person name (PN components, words, hyphen halves) of 3+ characters, with the
    ASCII spellings of those that are not ASCII ("müller": also "muller" and "mueller")."""
    parts: set[str] = set()
    for word in re.split(r"[\^=\s,]+", value.lower()):
        for part in {word, *word.split("-")}:
            part = part.strip(".'")
            if len(part) >= _MIN_NAME_PART and part not in _NAME_NOISE:
                parts |= {part, *transliterations(part)}
    return parts


# Letters NFKD does not take apart, and the German way with umlauts (a reading room writes
# "Mueller" for "Müller" as often as "Muller").
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ł": "l", "þ": "th"})
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})


def transliterations(word: str) -> set[str]:
    """The ASCII spellings of a lower-case word that is not ASCII (none when it is, or when
    its letters have no ASCII form, as in Cyrillic or CJK)."""
    if word.isascii():
        return set()
    return {
        spelled
        for spelled in ascii_spellings(word)
        if spelled.isascii() and len(spelled) >= _MIN_NAME_PART
    }


def ascii_spellings(text: str) -> tuple[str, str]:
    """`text` with its accented letters written the German way ("Mueller") and without their
    accents ("Muller"); letters with no ASCII form stay as they are."""
    spelled = []
    for table in (_UMLAUTS, None):
        changed = text.translate(table) if table else text
        decomposed = unicodedata.normalize("NFKD", changed.translate(_FOLD))
        spelled.append("".join(char for char in decomposed if not unicodedata.combining(char)))
    return spelled[0], spelled[1]


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def date_forms(value: str) -> set[str]:
    """A DA value (YYYYMMDD) in the spellings people type into free text, the month in English
    words too ("4 July 1951", "04-JUL-1951", "Jul 4, 1951"; matched without case)."""
    digits = value.strip().replace(".", "").replace("-", "")
    if len(digits) != 8 or not digits.isdigit() or digits == DUMMY_DATE:
        # (19000101 is what the Basic Profile writes as a dummy date: no one's birthday.)
        return set()
    year, month, day = digits[:4], digits[4:6], digits[6:]
    forms = {
        digits,
        f"{year}-{month}-{day}",
        f"{year}/{month}/{day}",
        f"{day}/{month}/{year}",
        f"{month}/{day}/{year}",
        f"{day}.{month}.{year}",
    }
    if not 1 <= int(month) <= 12:
        return forms
    full = _MONTHS[int(month) - 1]
    ordinal = _ordinal(int(day))
    for name in {full, full[:3], full[:4]}:
        for day_text in {day, str(int(day)), ordinal}:
            forms |= {
                f"{day_text} {name} {year}",
                f"{day_text}-{name}-{year}",
                f"{day_text} {name}. {year}",
                f"{day_text} of {name} {year}",
                f"{name} {day_text}, {year}",
                f"{name} {day_text} {year}",
                f"{name}. {day_text}, {year}",
            }
    forms.add(f"{day}{full[:3]}{year}")  # 04JUL1951, as some systems print dates
    return forms


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _uid_tags() -> frozenset[int]:
    return frozenset(
        rule.tag
        for rule in load_table()
        if rule.tag is not None and rule.basic in (Action.U, Action.X_Z_U)
    )


def collect_uids(ds: Dataset) -> set[str]:
    """Original instance UIDs (those the Basic Profile remaps) at every depth and in file meta."""
    tags = _uid_tags()
    found: set[str] = set()

    def walk(dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            if tag in BULK_TAGS:
                continue
            vr = vr_of(dataset, tag)
            if vr == "SQ":
                for item in dataset[tag].value or ():
                    walk(item)
            elif tag in tags and vr == "UI":
                value = dataset[tag].value
                values = value if isinstance(value, MultiValue) else [value]
                found.update(str(uid).strip("\0 ") for uid in values if uid)

    walk(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPInstanceUID"):
        found.add(str(meta.MediaStorageSOPInstanceUID))
    return found


def collect_identifiers(
    ds: Dataset,
    *,
    extra: Iterable[str] = (),
    allowed: Iterable[str] = (),
    exclude_keywords: Iterable[str] = (),
    retain_uids: bool = False,
    include_uids: bool = True,
) -> Identifiers:
    """Gather the identifying values of an original (not yet de-identified) dataset.

    `extra` adds known values such as registry MRNs; `allowed` lists the trial values the engine
    writes on purpose; `exclude_keywords` skips attributes the profile retains (e.g.
    PatientBirthDate, InstitutionName); `retain_uids` skips UIDs (Retain UIDs option).
    """
    excluded = frozenset(exclude_keywords)
    allowed_lower = frozenset(value.strip().lower() for value in allowed if value.strip())
    extra = tuple(extra)
    read = None if include_uids and not retain_uids else _read_values(ds, excluded)
    if read is None:
        return _collect(ds, extra, allowed_lower, excluded, retain_uids, include_uids)
    key = (read, extra, allowed_lower, excluded)
    found = _COLLECTED.get(key)
    if found is None:
        found = _collect(ds, extra, allowed_lower, excluded, retain_uids, include_uids)
        if len(_COLLECTED) >= _COLLECTED_SIZE:
            _COLLECTED.clear()
        _COLLECTED[key] = found
    elif "OtherPatientIDs" not in excluded and _OTHER_IDS in ds._dict:
        as_if_sequence_converted(ds)  # `_collect` converts the sequence: the same left behind
    return found


_COLLECTED: dict[tuple[Any, ...], Identifiers] = {}
"""Identifiers by the raw values they were read from: the files of one patient repeat them.
Holds PHI: forgotten with the engine's other caches (`forget_identifiers`)."""
_COLLECTED_SIZE = 64


def forget_identifiers() -> None:
    _COLLECTED.clear()


def _read_values(ds: Dataset, excluded: frozenset[str]) -> tuple[Any, ...] | None:
    """What `_collect` reads, as the raw values it decodes; None unless all of them are raw
    ASCII (the character set decodes those alike) or absent."""
    elems = ds._dict
    read: list[Any] = []
    for tag in _READ_TAGS:
        elem = elems.get(tag)
        if elem is None:
            read.append(None)
            continue
        value = elem.value
        if (
            elem.__class__ is not RawDataElement
            or value.__class__ is not bytes
            or not value.isascii()
            or b"\x1b" in value
        ):
            return None
        read.append((elem.VR, value))
    other = elems.get(_OTHER_IDS)
    if other is not None and "OtherPatientIDs" not in excluded:
        # Its items decode in the dataset's character set.
        if (
            other.__class__ is not RawDataElement
            or other.VR != "SQ"
            or other.value.__class__ is not bytes
        ):
            return None
        encodings = ds.original_character_set or ds._character_set
        read.append((other.value, tuple(encodings) if isinstance(encodings, list) else encodings))
    return tuple(read)


def _collect(
    ds: Dataset,
    extra: tuple[str, ...],
    allowed_lower: frozenset[str],
    excluded: frozenset[str],
    retain_uids: bool,
    include_uids: bool,
) -> Identifiers:
    def values(keyword: str) -> list[str]:
        return [] if keyword in excluded else _values(ds, keyword)

    names: set[str] = set()
    for keyword in _NAME_KEYWORDS:
        for value in values(keyword):
            names |= name_parts(value)
    raw_ids = [value for keyword in _ID_KEYWORDS for value in values(keyword)]
    if "OtherPatientIDs" not in excluded:
        for item in _other_ids(ds):
            raw_ids += _values(item, "PatientID")
    raw_ids += [value.strip() for value in extra if value.strip()]
    ids = {value.lower() for value in raw_ids} - allowed_lower
    addresses: set[str] = set()
    for value in values("PatientAddress"):
        addresses |= {
            part.strip().lower()
            for part in re.split(r"[\^,;\n\r]+", value)
            if len(part.strip()) >= _MIN_ADDRESS_PART
        }
    # The last seven digits survive the ways people write country and area codes.
    phones = {
        digits[-_MIN_PHONE_DIGITS:]
        for value in values("PatientTelephoneNumbers")
        if len(digits := re.sub(r"\D", "", value)) >= _MIN_PHONE_DIGITS
    }
    institutions = {
        value.lower()
        for keyword in _INSTITUTION_KEYWORDS
        for value in values(keyword)
        if len(value) >= 4
    } - allowed_lower
    dates: set[str] = set()
    for value in values("PatientBirthDate"):
        dates |= date_forms(value)
    uids: set[str] = set()
    if include_uids and not retain_uids:
        uids = collect_uids(ds)
    return Identifiers(
        name_parts=frozenset(names - allowed_lower),
        ids=frozenset(value for value in ids if len(value) >= _MIN_ID),
        short_ids=frozenset(value for value in ids if len(value) < _MIN_ID),
        dates=frozenset(dates),
        addresses=frozenset(addresses),
        phones=frozenset(phones),
        institutions=frozenset(institutions),
        uids=frozenset(uids),
        allowed=allowed_lower,
    )
