"""Rewrite a file in Explicit VR Little Endian, the only syntax a CD may hold (PS3.11 D.2).

Only lossless re-encodings of uncompressed data: Implicit VR Little Endian and Deflated
Explicit VR Little Endian keep their pixel bytes exactly. Big Endian (retired) would need the
pixel words swapped and compressed syntaxes would need decoding, so both are refused: put such
exams on a DVD or convert them with a tool the office trusts (dcmconv, gdcmconv).
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from trialship.media.errors import MediaError

CONVERTIBLE = frozenset({ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian})


def to_explicit_vr_little_endian(src: Path, dst: Path) -> bool:
    """Write `src` as Explicit VR Little Endian to `dst`; False (nothing written) when `src` is
    already in that syntax. Raises MediaError for a syntax that cannot be rewritten losslessly.
    """
    try:
        ds = pydicom.dcmread(src)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise MediaError(f"cannot read {src}: {exc}") from exc
    syntax = ds.file_meta.get("TransferSyntaxUID", "")
    if syntax == ExplicitVRLittleEndian:
        return False
    if syntax not in CONVERTIBLE:
        raise MediaError(
            f"{src} is in transfer syntax {syntax or 'unknown'}, which trialship does not "
            "rewrite: put the exam on a DVD or convert it first"
        )
    ds.file_meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    try:
        # Ambiguous VRs from an implicit file (US/SS, OB/OW) are resolved by pydicom on write.
        ds.save_as(dst, implicit_vr=False, little_endian=True, enforce_file_format=True)
    except OSError as exc:
        raise MediaError(f"cannot write {dst}: {exc.strerror}") from exc
    return True
