"""Which directory record a SOP class gets, and the keys each record type needs (PS3.3 F.5).

Kept apart from the writer so that `entry_from_file` knows which extra header keys to read.
Each key is (keyword, type): type 1 must be non-empty, type 2 may be empty but is written,
type 3 ("1C" keys that apply when the file has them) is copied only when present.
"""

from __future__ import annotations

from typing import Final

IMAGE = "IMAGE"

# SOP classes of common non-image objects in trial deliveries (PS3.3 Table F.4-1).
RECORD_TYPE_BY_SOP_CLASS: Final[dict[str, str]] = {
    # SR documents: Basic Text, Enhanced, Comprehensive, Comprehensive 3D, Extensible,
    # X-Ray Radiation Dose, Radiopharmaceutical Radiation Dose, Patient Radiation Dose SR.
    "1.2.840.10008.5.1.4.1.1.88.11": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.22": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.33": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.34": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.35": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.67": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.68": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.73": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.88.59": "KEY OBJECT DOC",
    # Softcopy presentation states: grayscale, color, pseudo-color, blending, XA/XRF.
    "1.2.840.10008.5.1.4.1.1.11.1": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.11.2": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.11.3": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.11.4": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.11.5": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT DOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT STRUCTURE SET",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT PLAN",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT PLAN",  # RT Ion Plan
    # Encapsulated PDF, CDA, STL, OBJ, MTL.
    "1.2.840.10008.5.1.4.1.1.104.1": "ENCAP DOC",
    "1.2.840.10008.5.1.4.1.1.104.2": "ENCAP DOC",
    "1.2.840.10008.5.1.4.1.1.104.3": "ENCAP DOC",
    "1.2.840.10008.5.1.4.1.1.104.4": "ENCAP DOC",
    "1.2.840.10008.5.1.4.1.1.104.5": "ENCAP DOC",
}

# Keys beyond InstanceNumber (which every record below SERIES gets from DirEntry).
EXTRA_KEYS: Final[dict[str, tuple[tuple[str, int], ...]]] = {
    IMAGE: (),
    "SR DOCUMENT": (
        ("CompletionFlag", 1),
        ("VerificationFlag", 1),
        ("ContentDate", 1),
        ("ContentTime", 1),
        ("VerificationDateTime", 3),
        ("ConceptNameCodeSequence", 1),
    ),
    "KEY OBJECT DOC": (
        ("ContentDate", 1),
        ("ContentTime", 1),
        ("ConceptNameCodeSequence", 1),
    ),
    "PRESENTATION": (
        ("PresentationCreationDate", 1),
        ("PresentationCreationTime", 1),
        ("ContentLabel", 1),
        ("ContentDescription", 2),
        ("ContentCreatorName", 2),
        ("ReferencedSeriesSequence", 3),
        ("BlendingSequence", 3),
    ),
    "RT DOSE": (("DoseSummationType", 1),),
    "RT STRUCTURE SET": (
        ("StructureSetLabel", 1),
        ("StructureSetDate", 2),
        ("StructureSetTime", 2),
    ),
    "RT PLAN": (("RTPlanLabel", 1), ("RTPlanDate", 2), ("RTPlanTime", 2)),
    "ENCAP DOC": (
        ("ContentDate", 2),
        ("ContentTime", 2),
        ("DocumentTitle", 2),
        ("HL7InstanceIdentifier", 3),
        ("ConceptNameCodeSequence", 2),
        ("MIMETypeOfEncapsulatedDocument", 1),
    ),
}


def record_type_for(sop_class_uid: str) -> str:
    """The lowest-level record type for a SOP class: IMAGE unless listed above."""
    return RECORD_TYPE_BY_SOP_CLASS.get(sop_class_uid, IMAGE)
