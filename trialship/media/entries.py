"""What the DICOMDIR needs to know of each instance, and reading it from a file header."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from trialship.media.errors import DicomdirError
from trialship.media.fileid import FileId, assign_file_ids
from trialship.media.records import EXTRA_KEYS, record_type_for

# Header keys read by entry_from_file; the record-type extras are added per SOP class.
_BASE_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "Modality",
    "StudyDescription",
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
)
_ALL_EXTRA_KEYWORDS = tuple(
    sorted({keyword for keys in EXTRA_KEYS.values() for keyword, _ in keys})
)


@dataclass(frozen=True)
class DirEntry:
    """One instance as the DICOMDIR sees it. Strings are the header values as read.

    `extra` holds the record-type keys of non-image objects (SR, presentation states, RT, ...)
    as pydicom DataElements copied from the header; images need none.
    """

    patient_id: str
    patient_name: str
    study_instance_uid: str
    study_date: str
    study_time: str
    study_id: str
    accession_number: str
    study_description: str
    series_instance_uid: str
    modality: str
    series_number: int | None
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    file_id: FileId | None = None
    extra: tuple[DataElement, ...] = ()

    @property
    def record_type(self) -> str:
        return record_type_for(self.sop_class_uid)

    def with_file_id(self, file_id: FileId) -> DirEntry:
        return dataclasses.replace(self, file_id=file_id)


def entry_from_file(path: Path | str, file_id: FileId | None = None) -> DirEntry:
    """Read the keys of a DirEntry from a DICOM file's header (pixel data is never read)."""
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=[*_BASE_KEYWORDS, *_ALL_EXTRA_KEYWORDS],
        )
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise DicomdirError(f"cannot read the DICOM header of {path}: {exc}") from exc
    meta = ds.file_meta
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sop_class = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "")))
    extra = tuple(
        ds[keyword] for keyword, _ in EXTRA_KEYS[record_type_for(sop_class)] if keyword in ds
    )
    return DirEntry(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_description=_text(ds, "StudyDescription"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality"),
        series_number=_number(ds, "SeriesNumber"),
        sop_class_uid=sop_class,
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        transfer_syntax_uid=transfer_syntax,
        instance_number=_number(ds, "InstanceNumber"),
        file_id=file_id,
        extra=extra,
    )


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _number(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        return None
    return int(value)


def sort_key(entry: DirEntry) -> tuple[str, str, str, int, str, int, str]:
    """Patient, then study by date and time, series by number, instance by number."""
    return (
        entry.patient_id,
        entry.study_date + entry.study_time,
        entry.study_instance_uid,
        entry.series_number or 0,
        entry.series_instance_uid,
        entry.instance_number or 0,
        entry.sop_instance_uid,
    )


def number_entries(entries: Iterable[DirEntry]) -> list[DirEntry]:
    """Entries in reading order, each with its File ID (see fileid.assign_file_ids)."""
    ordered = sorted(entries, key=sort_key)
    ids = assign_file_ids(
        (e.patient_id, e.study_instance_uid, e.series_instance_uid, e.sop_instance_uid)
        for e in ordered
    )
    return [e.with_file_id(ids[e.sop_instance_uid]) for e in ordered]
