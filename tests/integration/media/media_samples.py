"""Synthetic de-identified DICOM files for the disc tests and bench (never real patient data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
KEY_OBJECT = "1.2.840.10008.5.1.4.1.1.88.59"


@dataclass(frozen=True)
class Series:
    patient: str
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int
    modality: str
    count: int


def write_image(
    path: Path,
    series: Series,
    instance: int,
    *,
    rows: int = 16,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """A small CT or MR image as the de-identification engine leaves it (dummy Type 1 keys)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(CT_IMAGE if series.modality == "CT" else MR_IMAGE)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = series.study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = ""
    ds.Modality = series.modality
    ds.StudyDescription = "TRIAL VISIT"
    ds.PatientName = f"SUBJECT^{series.patient}"
    ds.PatientID = series.patient
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "trialship test data"
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series.series_number
    ds.InstanceNumber = instance
    ds.ReferringPhysicianName = ""
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    # Little-endian 12-bit ramp, different per instance so no two files hash alike.
    ds.PixelData = b"".join(
        ((i * instance) % 4096).to_bytes(2, "little") for i in range(rows * rows)
    )
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.save_as(
        path, enforce_file_format=True, implicit_vr=transfer_syntax == ImplicitVRLittleEndian
    )
    return path


def standard_series() -> list[Series]:
    """Two patients, three studies, five series of CT and MR: twenty instances."""
    out: list[Series] = []
    for patient, studies in (("SUBJ001", ("20240105", "20240410")), ("SUBJ002", ("20240212",))):
        for date in studies:
            study = generate_uid()
            for number, modality in enumerate(("CT", "MR") if date != "20240410" else ("CT",)):
                out.append(Series(patient, study, date, generate_uid(), number + 1, modality, 4))
    return out
