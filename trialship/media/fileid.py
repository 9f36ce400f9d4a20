"""PS3.10 File IDs and the ISO 9660 Level 1 names they become on a disc.

Layout: `DICOM/Pnnnnnnn/Snnnnnnn/Ennnnnnn/Innnnnnn` (patient, study, series, instance, each
counted from 1 in a deterministic order). The "DICOM" root folder keeps README.TXT and
MANIFEST.CSV apart from the images, as most commercial discs do; five components and four
directory levels below the root stay well inside the limits of eight (PS3.10 8.2, PS3.12 F.1.2.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from trialship.media.errors import FileIdError

MAX_COMPONENT_CHARS = 8
MAX_COMPONENTS = 8
# PS3.12 F.1.2.1 counts the root as one of eight levels, so a File ID may hold at most seven
# directories before the file name.
MAX_ISO_DIRECTORY_DEPTH = 8
MAX_FILESET_ID_CHARS = 16
ROOT_FOLDER = "DICOM"

_COMPONENT = re.compile(r"[A-Z0-9_]{1,8}")
_FILESET_ID = re.compile(r"[A-Z0-9_ ]{0,16}")


def is_conformant_component(name: str) -> bool:
    """True when `name` is 1-8 characters of A-Z, 0-9 and _ (PS3.10 8.2 and 8.5)."""
    return _COMPONENT.fullmatch(name) is not None


@dataclass(frozen=True, order=True, slots=True, init=False)
class FileId:
    """A validated File ID: what ReferencedFileID holds, and where the file sits on the disc.

    Made from its components, kept as "DICOM/P0000001/..." only: every manifest row, image
    file and hash that names the file shares that one string (a disc may hold tens of
    thousands). Ordered as its components are: "/" sorts before every allowed character.
    """

    posix: str

    def __init__(self, components: tuple[str, ...]) -> None:
        posix = "/".join(components)
        if not components:
            raise FileIdError("a File ID needs at least one component")
        if len(components) > MAX_COMPONENTS:
            raise FileIdError(
                f"File ID {posix} has {len(components)} components; "
                f"PS3.10 allows at most {MAX_COMPONENTS}"
            )
        # Directories = components - 1, plus the root.
        if len(components) > MAX_ISO_DIRECTORY_DEPTH:
            raise FileIdError(f"File ID {posix} is nested deeper than ISO 9660 allows")
        for part in components:
            if not is_conformant_component(part):
                raise FileIdError(
                    f"File ID component {part!r} of {posix} is not allowed: use 1-8 "
                    "characters from A-Z, 0-9 and _ (PS3.10 8.5, ISO 9660 Level 1)"
                )
        object.__setattr__(self, "posix", posix)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.posix.split("/"))

    @classmethod
    def parse(cls, text: str) -> FileId:
        """Read "DICOM/P0000001/..." or "DICOM\\P0000001\\..." (as DICOMDIR viewers print it)."""
        return cls(tuple(part for part in re.split(r"[\\/]", text) if part))

    @property
    def directories(self) -> tuple[str, ...]:
        """ISO paths of the folders above the file, parents first ("/DICOM", "/DICOM/P0000001")."""
        return tuple("/" + "/".join(self.components[:i]) for i in range(1, len(self.components)))

    @property
    def iso_path(self) -> str:
        # PS3.12 F.1.2.1: a File ID maps to /Comp1/.../CompN.;1 - a file name with an empty
        # extension and version 1.
        return "/" + self.posix + ".;1"


def instance_file_id(patient: int, study: int, series: int, instance: int) -> FileId:
    """The File ID of the n-th instance of the n-th series ... (all counted from 1)."""
    numbers = (patient, study, series, instance)
    if any(n < 1 or n > 9_999_999 for n in numbers):
        raise FileIdError(f"File ID counters out of range 1..9999999: {numbers}")
    return FileId(
        (ROOT_FOLDER, f"P{patient:07d}", f"S{study:07d}", f"E{series:07d}", f"I{instance:07d}")
    )


def assign_file_ids(keys: Iterable[tuple[str, str, str, str]]) -> dict[str, FileId]:
    """File IDs for instances given as (patient_id, study_uid, series_uid, sop_instance_uid).

    Patients, studies, series and instances are numbered in the order they first appear, so the
    caller decides the order (e.g. sorted by series number and instance number) and the same
    input always gives the same names. Returns SOP Instance UID -> File ID.
    """
    patients: dict[str, int] = {}
    studies: dict[tuple[str, str], int] = {}
    series: dict[tuple[str, str], int] = {}
    instances: dict[tuple[str, str], int] = {}
    # Study and series numbers restart under each parent so folders read S0000001, S0000002...
    studies_per_patient: dict[str, int] = {}
    series_per_study: dict[str, int] = {}
    result: dict[str, FileId] = {}
    for patient_id, study_uid, series_uid, sop_uid in keys:
        if sop_uid in result:
            raise FileIdError(f"SOP Instance UID {sop_uid} is listed twice")
        p = patients.setdefault(patient_id, len(patients) + 1)
        if (patient_id, study_uid) not in studies:
            studies_per_patient[patient_id] = studies_per_patient.get(patient_id, 0) + 1
            studies[(patient_id, study_uid)] = studies_per_patient[patient_id]
        if (study_uid, series_uid) not in series:
            series_per_study[study_uid] = series_per_study.get(study_uid, 0) + 1
            series[(study_uid, series_uid)] = series_per_study[study_uid]
        i = instances[(study_uid, series_uid)] = instances.get((study_uid, series_uid), 0) + 1
        result[sop_uid] = instance_file_id(
            p, studies[(patient_id, study_uid)], series[(study_uid, series_uid)], i
        )
    return result


def validate_volume_id(value: str, *, what: str = "File-set ID") -> str:
    """Check a File-set ID / Volume ID: 0-16 characters from A-Z, 0-9, _ (PS3.10 8.1, 8.5).

    ISO 9660 pads the Volume Identifier with spaces (PS3.12 F.1.1), so trailing spaces are
    trimmed and inner spaces rejected.
    """
    trimmed = value.rstrip(" ")
    if len(trimmed) > MAX_FILESET_ID_CHARS:
        raise FileIdError(f"{what} {value!r} is longer than {MAX_FILESET_ID_CHARS} characters")
    if " " in trimmed or not _FILESET_ID.fullmatch(trimmed):
        raise FileIdError(f"{what} {value!r} is not allowed: use A-Z, 0-9 and _ only (PS3.10 8.5)")
    return trimmed
