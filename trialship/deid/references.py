"""The Common Instance Reference module (PS3.3 C.10.8/C.12.2) once the profile has run.

The module lists the series and instances that the instance references elsewhere (Source Image,
Derivation Image, Referenced Image Sequences...). The profile may empty every one of those
references (Z on a Type 2 sequence): the module then points at instances nothing references
any more, which validators report. It is removed only then, when references outside it were
there before the walk and none is left: where the module itself is the reference (a
presentation state's Referenced Series Sequence) nothing changes.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from trialship.deid.report import ReportAction, ReportBuilder

_REFERENCED_SERIES = 0x00081115
_OTHER_STUDIES = 0x00081200
_MODULE = (_REFERENCED_SERIES, _OTHER_STUDIES)
_REFERENCED_INSTANCE = 0x00081155
_INSTANCE_TAG_BYTES = (b"\x08\x00\x55\x11", b"\x00\x08\x11\x55")  # little, big endian


def references_elsewhere(ds: Dataset) -> bool | None:
    """None when `ds` has no Common Instance Reference module; else whether a sequence outside
    it holds a Referenced SOP Instance UID. Items still encoded are searched as bytes: a chance
    match of the tag's four bytes can only keep the module."""
    elems = ds._dict
    if _REFERENCED_SERIES not in elems:
        return None
    return any(_holds_reference(elem) for key, elem in elems.items() if key not in _MODULE)


def drop_unreferenced_module(ds: Dataset, before: bool | None, report: ReportBuilder) -> None:
    """Remove the module when the walk removed every reference it lists (`before`: what
    `references_elsewhere` said of the original)."""
    if not before or references_elsewhere(ds) is not False:
        return
    for tag, keyword in (
        (_REFERENCED_SERIES, "ReferencedSeriesSequence"),
        (_OTHER_STUDIES, "StudiesContainingOtherReferencedInstancesSequence"),
    ):
        if tag in ds._dict:
            del ds[tag]
            report.add(
                tag,
                keyword,
                keyword,
                ReportAction.REMOVED,
                "Common Instance Reference: the profile removed every reference it lists",
            )


def _holds_reference(elem: Any) -> bool:
    if elem.VR not in ("SQ", "UN", None):  # (an implicit VR raw element has no VR yet)
        return False
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return any(pattern in value for pattern in _INSTANCE_TAG_BYTES)
    if not isinstance(value, Sequence):
        return False
    for item in value:
        items = item._dict
        if _REFERENCED_INSTANCE in items or any(_holds_reference(e) for e in items.values()):
            return True
    return False
