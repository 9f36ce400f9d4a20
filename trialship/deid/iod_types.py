"""Attribute Types (1, 2, 3) in the IOD of an instance: what decides combined Annex E codes.

PS3.15 E.1.1 says: use the first letter of a combined code (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) unless
a later one is needed for IOD conformance: Z for a Type 2 attribute, D (or U) for a Type 1.
The Type depends on the IOD and, inside sequences, on where the attribute is (Source Image
Sequence is Type 3 at the top of a CT Image but Type 2 in the Derivation Image functional group
of an Enhanced CT Image), so it is looked up by SOP Class UID, sequence path and keyword.

The Types come from two package data files written by `scripts/iod_types_from_highdicom.py`
from highdicom's tables of PS3.3 (highdicom, MIT License, Copyright 2020 MGH Computational
Pathology; generated from the standard's XML): `iod_types.csv` (module, path, keyword, Type of
the attributes with a combined code, Types 1, 1C, 2 and 2C only) and `iod_modules.csv` (SOP
Class UID -> IOD -> its modules). Every module of the IOD counts, whatever its usage: an
attribute present in an instance says its module is there.

- Conditional Types (1C, 2C) count as their letter: if the attribute is present at all, the
  condition that put it there most likely holds.
- An attribute not listed is Type 3 (optional), so the first letter of the code applies.
- An instance of an unknown SOP class (or with none) gets `COMMON_TYPES`: the Types the
  attributes have in the modules shared by the common image IODs (CT, MR, PET, CR/DX, US, SC,
  XA) and in the SR and presentation-state modules, at any depth (what the engine did before
  it knew the IODs): PS3.3 C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1 General Series,
  C.7.4.1 Frame of Reference, C.7.6.1 General Image, C.7.6.4 Contrast/Bolus, C.7.6.14
  Acquisition Context, C.12.1 SOP Common, C.11.10 Presentation State Identification, C.17.2 SR
  Document General (edition 2024b).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

SeqPath = tuple[str, ...]
"""Keywords of the sequences from the top of the dataset to an attribute; () at the top."""

IOD_TYPES: dict[str, str] = {
    # Patient module
    "PatientName": "2",
    "PatientID": "2",
    "PatientBirthDate": "2",
    "PatientSex": "2",
    # General Study module
    "StudyInstanceUID": "1",
    "StudyDate": "2",
    "StudyTime": "2",
    "ReferringPhysicianName": "2",
    "StudyID": "2",
    "AccessionNumber": "2",
    # General Series, Frame of Reference, General Image, SOP Common
    "Modality": "1",
    "SeriesInstanceUID": "1",
    "SeriesNumber": "2",
    "FrameOfReferenceUID": "1",
    "InstanceNumber": "2",
    "ContentDate": "2",
    "ContentTime": "2",
    "SOPClassUID": "1",
    "SOPInstanceUID": "1",
    # Contrast/Bolus and Acquisition Context modules
    "ContrastBolusAgent": "2",
    "AcquisitionContextSequence": "2",
    # Presentation State Identification module
    "ContentCreatorName": "2",
    # SR Document General module
    "VerifyingObserverName": "1",
    "VerifyingOrganization": "1",
    "VerifyingObserverIdentificationCodeSequence": "2",
    # Clinical Trial Subject/Study/Series modules (the engine rewrites these afterwards)
    "ClinicalTrialSponsorName": "1",
    "ClinicalTrialProtocolID": "1",
    "ClinicalTrialProtocolName": "2",
    "ClinicalTrialSiteID": "2",
    "ClinicalTrialSiteName": "2",
    "ClinicalTrialTimePointID": "2",
    "ClinicalTrialCoordinatingCenterName": "2",
}
"""The common-module Types of `COMMON_TYPES` (the fallback), by keyword."""


@dataclass(frozen=True, eq=False)
class IodTypes:
    """The Types 1 and 2 of one IOD's attributes with a combined code, by sequence path.

    Compared and hashed by identity: tables with the same content are one object
    (`types_for`), so the rules compiled for them (and what the walk remembers) are shared.
    """

    name: str
    """The (first) IOD with these Types."""
    types: Mapping[SeqPath, Mapping[str, str]]
    """Sequence path -> keyword -> '1' or '2'."""
    flat: bool = False
    """True for `COMMON_TYPES`: the top level's Types apply at every depth."""

    def type_of(self, path: Sequence[str], keyword: str) -> str:
        """'1', '2' or '3' for the attribute `keyword` in the items of the sequences `path`."""
        at = self.types.get(() if self.flat else tuple(path))
        return at.get(keyword, "3") if at else "3"

    def scope_of(self, path: SeqPath) -> SeqPath | None:
        """The path whose Types apply in the items at `path`: itself if the table lists any
        attribute there or deeper, `()` for a flat table, else None (everything is Type 3)."""
        if self.flat:
            return ()
        return path if path in self._prefixes else None

    @functools.cached_property
    def _prefixes(self) -> frozenset[SeqPath]:
        return frozenset(path[:depth] for path in self.types for depth in range(len(path) + 1))


COMMON_TYPES = IodTypes("common modules", {(): IOD_TYPES}, flat=True)

_STRICTNESS = {"1": 0, "2": 1}


def _rows(name: str) -> list[dict[str, str]]:
    """The rows of a packaged CSV, past its `#` header lines (the credit of the source)."""
    raw = resources.files("trialship.deid").joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in raw.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@functools.cache
def _module_types() -> dict[str, dict[tuple[SeqPath, str], str]]:
    """Module -> (path, keyword) -> '1' or '2', read once per process."""
    modules: dict[str, dict[tuple[SeqPath, str], str]] = {}
    for row in _rows("iod_types.csv"):
        path = tuple(row["path"].split(".")) if row["path"] else ()
        modules.setdefault(row["module"], {})[(path, row["keyword"])] = row["type"][0]
    return modules


@functools.cache
def _sop_classes() -> dict[str, tuple[str, tuple[str, ...]]]:
    """SOP Class UID -> (IOD, its modules with Types), read once per process."""
    return {
        row["sop_class_uid"]: (row["iod"], tuple(row["modules"].split()))
        for row in _rows("iod_modules.csv")
    }


_INTERNED: dict[frozenset[tuple[SeqPath, str, str]], IodTypes] = {}


@functools.cache
def _iod_types(iod: str, modules: tuple[str, ...]) -> IodTypes:
    """The Types of the modules of `iod` merged, as the one object for that content."""
    merged: dict[tuple[SeqPath, str], str] = {}
    tables = _module_types()
    for module in modules:
        for place, kind in tables.get(module, {}).items():
            # An attribute in several modules of the IOD (a Segmentation's Content Date: Type 2
            # in General Image, Type 1 in Multi-frame Functional Groups) must satisfy each of
            # them: the strictest Type wins.
            held = merged.get(place)
            if held is None or _STRICTNESS[kind] < _STRICTNESS[held]:
                merged[place] = kind
    content = frozenset((path, keyword, kind) for (path, keyword), kind in merged.items())
    found = _INTERNED.get(content)
    if found is None:
        types: dict[SeqPath, dict[str, str]] = {}
        for path, keyword, kind in content:
            types.setdefault(path, {})[keyword] = kind
        found = _INTERNED[content] = IodTypes(iod, types)
    return found


def types_for(sop_class_uid: str | None) -> IodTypes:
    """The Types for an instance of `sop_class_uid`; `COMMON_TYPES` if unknown or None."""
    known = _sop_classes().get(sop_class_uid or "")
    if known is None:
        return COMMON_TYPES
    return _iod_types(*known)


def iod_type(sop_class_uid: str | None, path: Sequence[str], keyword: str) -> str:
    """'1', '2' or '3' for the attribute `keyword` inside the sequences `path` (keywords from
    the top; empty at the top level) of an instance of `sop_class_uid`."""
    return types_for(sop_class_uid).type_of(path, keyword)
