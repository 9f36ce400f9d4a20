"""Fail-closed leak check: is any original identifying value left anywhere in the output?

Every element at every depth is scanned, file meta included: string values (each value of a
multi-valued element), person names, and OB/UN bytes read as Latin-1. Matching rules:

- name parts (3+ letters, and the ASCII spellings of those that are not) as whole words,
  case-insensitive, in every value but UIDs, dates, numbers and the designators of coding
  schemes (`_VOCABULARY_KEYWORDS`): code values and meanings and
  CS values included, since an operator types those too (ContentLabel, BodyPartExamined, a
  local code's meaning). A match is reported even if it is an ordinary word, as a patient
  named Head meets BodyPartExamined HEAD (fail closed: a person decides, and removes the
  attribute in the trial's profile if it is the vocabulary);
- IDs, accession numbers and known identifiers as substrings (numeric edges digit-bounded);
  IDs under 4 characters only as whole words;
- the birth date in its usual spellings; address parts; the last seven digits of phone
  numbers; institution names as whole words;
- original instance UIDs, also as the root of a longer UID.

Binary values (OB, UN) are scanned for everything but phone numbers and 3-letter name parts,
which random bytes would match by chance. Numeric arrays (OW, OF, OD, OL, OV) and pixel data are
not scanned. Values the trial writes on purpose (`Identifiers.allowed`) are masked before names,
addresses and institutions are looked for, in the attributes the engine writes them into
(`Identifiers.written`) only.

Speed: most elements of an output are still raw (encoded bytes nobody needed to convert). A
cheap prefilter (`Prefilter`) looks at each value first: a case-insensitive search for every
identifier as a plain substring, over the raw bytes read as Latin-1 when they are ASCII (or
binary), else over the converted text. It can only say "maybe" more often than the rules above,
never less, so only a "maybe" pays for conversion and the exact rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from trialship.deid.codes import standard_meaning
from trialship.deid.elements import BULK_TAGS, keyword_of, text_value, vr_for, vr_of
from trialship.deid.identifiers import Identifiers, ascii_spellings, collect_identifiers
from trialship.deid.matching import IdentifierPatterns, Prefilter
from trialship.deid.raw_encode import EncodedSequence
from trialship.deid.report import tag_text

__all__ = ["Leak", "collect_identifiers", "find_leaks"]

_NO_NAME_VRS = frozenset({"UI", "DA", "DT", "TM", "AS", "IS", "DS"})
# Which vocabulary a code comes from (DCM, SCT, 99LOCAL...), never typed about a patient.
_VOCABULARY_KEYWORDS = frozenset(
    {
        "CodingSchemeDesignator",
        "CodingSchemeVersion",
        "MappingResource",
        "ContextGroupVersion",
        "ContextGroupExtensionFlag",
        "ContextGroupLocalVersion",
    }
)
_NO_PHONE_VRS = frozenset({"UI", "DA", "DT", "TM", "IS", "DS", "AS"})
_SCANNED_BINARY = frozenset({"OB", "UN"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"})
_NUMERIC_ARRAYS = frozenset({"OW", "OF", "OD", "OL", "OV"})


@dataclass(frozen=True)
class Leak:
    """Where a possible leak is and what kind of value it matched (never the value itself)."""

    kind: str
    tag: str
    keyword: str
    path: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "tag": self.tag, "keyword": self.keyword, "path": self.path}


def _texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(item) for item in value]
    return [str(value)]


class _Scanner:
    def __init__(self, identifiers: Identifiers) -> None:
        self.identifiers = identifiers
        self.prefilter = Prefilter(identifiers)
        self.phones = identifiers.phones
        self.leaks: list[Leak] = []

    @functools.cached_property
    def patterns(self) -> IdentifierPatterns:
        # Built only when the prefilter says "maybe": most outputs never need the exact rules.
        return IdentifierPatterns(self.identifiers)

    def maybe(self, elem: object, vr: str) -> bool:
        """False only when no rule of `kinds_in` can match this element's value."""
        value = getattr(elem, "value", None)
        if value is None or value == b"" or value == "":
            return False
        if getattr(elem, "is_raw", False) and isinstance(value, bytes | bytearray):
            if vr in _SCANNED_BINARY or value.isascii():
                return self.prefilter.maybe(bytes(value).decode("latin-1"))
            return True
        if isinstance(value, bytes | bytearray):
            return self.prefilter.maybe(bytes(value).decode("latin-1"))
        return any(self.prefilter.maybe(text) for text in _texts(value))

    def kinds_in(self, text: str, vr: str, keyword: str) -> set[str]:
        # The trial's values are no leak where the engine wrote them, and only there.
        written = keyword in self.identifiers.written
        masked = self.patterns.mask_allowed(text) if written else text
        found: set[str] = set()
        for kind, regex in self.patterns.kinds.items():
            # A site named after its hospital, or its town: what the trial writes is no leak.
            subject = masked if kind in ("institution", "address") else text
            if regex is not None and regex.search(subject):
                found.add(kind)
        if self.patterns.uids and self.patterns.has_uid(text):
            found.add("uid")
        if vr not in _NO_NAME_VRS and text.strip().lower() in self.patterns.short_ids:
            found.add("id")
        binary = vr in _SCANNED_BINARY
        names = self.patterns.long_names if binary else self.patterns.names
        if (
            names
            and vr not in _NO_NAME_VRS
            and keyword not in _VOCABULARY_KEYWORDS
            and (
                names.search(masked)
                # "Müller" in the text of a patient registered as "Muller" (or "Mueller")
                or (not masked.isascii() and any(map(names.search, ascii_spellings(masked))))
            )
        ):
            found.add("name")
        spaced = self.patterns.spaced_ids
        if spaced and not binary and vr not in _NO_PHONE_VRS and spaced.search(text):
            found.add("id")
        if self.phones and not binary and vr not in _NO_PHONE_VRS:
            digits = re.sub(r"\D", "", text)
            if any(phone in digits for phone in self.phones):
                found.add("phone")
        return found

    def standard_words(self, item: Dataset, texts: list[str]) -> bool:
        """True when every name the CodeMeaning matched is a word of the standard's own meaning
        of the item's code (SCT 69536005 "Head" for a patient named Head): vocabulary. A local
        code, or a meaning that adds a name ("Scan for Hawthorne"), stays a leak."""
        standard = standard_meaning(
            text_value(item, "CodingSchemeDesignator"), text_value(item, "CodeValue")
        )
        if not standard:
            return False
        vocabulary = set(re.findall(r"[0-9a-z]+", standard.lower()))
        assert self.patterns.names is not None  # (it matched)
        return all(
            match.group(0).lower() in vocabulary
            for text in texts
            for match in self.patterns.names.finditer(text)
        )

    def scan(self, ds: Dataset, prefix: str) -> None:
        for tag in list(ds.keys()):
            if tag in BULK_TAGS or (tag >> 16 & 0xFF01 == 0x6000 and tag & 0xFFFF == 0x3000):
                continue
            vr = vr_of(ds, tag)
            keyword = keyword_of(tag)
            path = f"{prefix}{keyword or tag_text(tag)}"
            if vr == "SQ":
                for index, item in enumerate(ds[tag].value or ()):
                    self.scan(item, f"{path}[{index}].")
                continue
            if vr in _NUMERIC_VRS or vr in _NUMERIC_ARRAYS:
                continue
            if not self.maybe(ds.get_item(tag), vr):
                continue
            value = ds[tag].value
            if isinstance(value, bytes | bytearray):
                texts = [bytes(value).decode("latin-1")]
                vr = "UN"
            else:
                texts = _texts(value)
            found: set[str] = set()
            for text in texts:
                found |= self.kinds_in(text, vr, keyword)
            if "name" in found and keyword == "CodeMeaning" and self.standard_words(ds, texts):
                found.discard("name")
            for kind in sorted(found):
                self.leaks.append(Leak(kind, tag_text(tag), keyword, path))

    def glance(self, ds: Dataset, pieces: list[str], raw: list[bytes]) -> bool:
        """Collect the text `maybe` would look at for every element `scan` would look at: into
        `pieces`, or as the raw bytes read as Latin-1 into `raw` (the caller checks that they
        are ASCII); False when some element needs `maybe` on its own (non-ASCII, deferred)."""
        append_raw = raw.append
        for key, elem in list(ds._dict.items()):
            if elem.__class__ is RawDataElement and elem.VR in _PLAIN_TEXT_VRS:
                # The common case: a raw text value (neither pixel nor overlay data, whatever
                # the tag, nor an element whose VR the dictionary says).
                value = elem.value
                if value.__class__ is bytes:
                    append_raw(value)
                    continue
            tag = int(key)
            if tag in BULK_TAGS or (tag >> 16 & 0xFF01 == 0x6000 and tag & 0xFFFF == 0x3000):
                continue
            vr = elem.VR
            if vr.__class__ is not str or vr == "UN" or len(vr) != 2 or tag >> 16 & 1:
                vr = vr_for(elem, tag)  # the common case (a plain, definite VR) is its own
            if vr == "SQ":
                if elem.__class__ is EncodedSequence:
                    found = self.glance_encoded(ds, elem)
                    if found is None:
                        return False
                    pieces += found
                    continue
                for item in ds[key].value or ():
                    if not self.glance(item, pieces, raw):
                        return False
                continue
            if vr in _NUMERIC_VRS or vr in _NUMERIC_ARRAYS:
                continue
            value = elem.value
            if value.__class__ is bytes and elem.__class__ is RawDataElement:
                append_raw(value)  # (binary or not: `maybe` would read it as Latin-1 text)
                continue
            if value is None:
                if elem.is_raw:
                    return False  # deferred: only `scan` reads it
                continue
            if isinstance(value, bytes | bytearray):
                if elem.is_raw and not (vr in _SCANNED_BINARY or value.isascii()):
                    return False
                if not value.isascii():
                    return False
                pieces.append(bytes(value).decode("latin-1"))
                continue
            for text in _texts(value):
                if not text.isascii():
                    return False
                pieces.append(text)
        return True

    def glance_encoded(self, ds: Dataset, elem: EncodedSequence) -> tuple[str, ...] | None:
        """`glance` of a sequence the walk put back as bytes (the same bytes in many files of a
        subject), without converting it in `ds`: once per distinct value."""
        value = elem.value
        if value in _GLANCED:
            return _GLANCED[value]
        encoding = ds.original_character_set or ds._character_set
        pieces: list[str] = []
        raw: list[bytes] = []
        items = convert_raw_data_element(elem, encoding=encoding, ds=ds).value or ()
        found = None
        if all(self.glance(item, pieces, raw) for item in items):
            text = _ascii_text(raw)
            if text is not None:
                found = (*pieces, text)
        if len(_GLANCED) >= _GLANCED_SIZE:
            _GLANCED.clear()
        _GLANCED[value] = found
        return found


def _ascii_text(raw: list[bytes]) -> str | None:
    """Raw values joined as one text (read as Latin-1), or None when one is not ASCII: `maybe`
    would read such a value on its own, as Latin-1 text (or converted)."""
    data = b"\n".join(raw)
    return data.decode("latin-1") if data.isascii() else None


_PLAIN_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)
"""VRs of text whose raw bytes `glance` takes as they are (a raw value, neither numeric nor
binary: no other rule of `glance` applies to it)."""


_GLANCED: dict[object, tuple[str, ...] | None] = {}
"""What `glance` collects from each encoded sequence's items: output values, forgotten with the
engine's other caches (`forget_glances`)."""
_GLANCED_SIZE = 1024


def forget_glances() -> None:
    _GLANCED.clear()


def _clean_at_a_glance(scanner: _Scanner, ds: Dataset, meta: Dataset | None) -> bool:
    """True when the prefilter finds nothing in all scanned values joined together.

    Every value `scan` would give the prefilter is a substring of the joined text (and its
    digits a substring of the joined digits), so a "no" here is a "no" for each of them: the
    exact scan can be skipped without skipping any check. Non-ASCII values are left to `scan`.
    """
    pieces: list[str] = []
    raw: list[bytes] = []
    for dataset in (meta, ds):
        if dataset is not None and not scanner.glance(dataset, pieces, raw):
            return False
    text = _ascii_text(raw)
    if text is None:
        return False
    pieces.append(text)
    return not scanner.prefilter.maybe("\n".join(pieces))


def find_leaks(ds: Dataset, identifiers: Identifiers) -> list[Leak]:
    """Every place in `ds` (file meta included) that holds an original identifying value."""
    scanner = _Scanner(identifiers)
    meta = getattr(ds, "file_meta", None)
    if _clean_at_a_glance(scanner, ds, meta):
        return []
    if meta is not None:
        scanner.scan(meta, "file_meta.")
    scanner.scan(ds, "")
    return scanner.leaks
