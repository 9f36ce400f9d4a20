"""What the DICOMDIR needs to know of each instance, and reading it from a file header."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from trialship.dicom_header import NotDicom, Unsupported, read_raw_header
from trialship.media.errors import DicomdirError
from trialship.media.fileid import FileId, assign_file_ids
from trialship.media.records import EXTRA_KEYS, IMAGE, record_type_for

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
_BASE_TAGS = tuple(t for t in (tag_for_keyword(k) for k in _BASE_KEYWORDS) if t is not None)
# The raw reader stops after group 0020; keys beyond it need pydicom.
_RAW_STOP = 0x00210000


class NotDicomError(DicomdirError):
    """The file is not DICOM (no preamble and "DICM" prefix, PS3.10 7.1)."""


@dataclass(frozen=True, slots=True)
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
    entry, _ = read_entry(path, file_id=file_id)
    return entry


def read_entry(
    path: Path | str, keywords: Sequence[str] = (), *, file_id: FileId | None = None
) -> tuple[DirEntry, dict[str, str]]:
    """The file's DirEntry and the text of `keywords` (group 0008-0020 keys), in one read.

    Image files go through the raw header reader (`header.py`); other objects (whose records
    copy sequences from the header) and anything the raw reader declines go through pydicom.
    Raises NotDicomError for a file without the DICOM preamble, DicomdirError when unreadable.
    """
    tags = {keyword: tag_for_keyword(keyword) for keyword in keywords}
    if any(tag is None or tag >= _RAW_STOP for tag in tags.values()):
        raise ValueError(f"read_entry reads keys of groups 0008-0020 only, not {keywords}")
    try:
        raw = read_raw_header(path, [*_BASE_TAGS, *(t for t in tags.values() if t is not None)])
    except NotDicom as exc:
        raise NotDicomError(str(exc)) from exc
    except Unsupported:
        return _pydicom_entry(path, keywords, file_id)
    except OSError as exc:
        raise DicomdirError(f"cannot read the DICOM header of {path}: {exc}") from exc
    sop_class = raw.text(0x00080016) or raw.media_sop_class_uid
    if record_type_for(sop_class) != IMAGE:
        return _pydicom_entry(path, keywords, file_id)  # its record copies header sequences
    try:
        entry = DirEntry(
            patient_id=raw.text(0x00100020),
            patient_name=raw.text(0x00100010),
            study_instance_uid=raw.text(0x0020000D),
            study_date=raw.text(0x00080020),
            study_time=raw.text(0x00080030),
            study_id=raw.text(0x00200010),
            accession_number=raw.text(0x00080050),
            study_description=raw.text(0x00081030),
            series_instance_uid=raw.text(0x0020000E),
            modality=raw.text(0x00080060),
            series_number=raw.number(0x00200011),
            sop_class_uid=sop_class,
            sop_instance_uid=raw.text(0x00080018, shared=False),
            transfer_syntax_uid=raw.transfer_syntax_uid,
            instance_number=raw.number(0x00200013),
            file_id=file_id,
        )
    except (ValueError, TypeError) as exc:
        raise DicomdirError(f"cannot read the DICOM header of {path}: {exc}") from exc
    return entry, {k: raw.text(t) for k, t in tags.items() if t is not None}


def _pydicom_entry(
    path: Path | str, keywords: Sequence[str], file_id: FileId | None
) -> tuple[DirEntry, dict[str, str]]:
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=[*_BASE_KEYWORDS, *_ALL_EXTRA_KEYWORDS, *keywords],
        )
    except pydicom.errors.InvalidDicomError as exc:
        raise NotDicomError(f"{path} is not a DICOM file: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise DicomdirError(f"cannot read the DICOM header of {path}: {exc}") from exc
    meta = ds.file_meta
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sop_class = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "")))
    extra = tuple(
        ds[keyword] for keyword, _ in EXTRA_KEYS[record_type_for(sop_class)] if keyword in ds
    )
    try:
        entry = DirEntry(
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
    except (ValueError, TypeError) as exc:
        raise DicomdirError(f"cannot read the DICOM header of {path}: {exc}") from exc
    return entry, {keyword: _text(ds, keyword) for keyword in keywords}


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
