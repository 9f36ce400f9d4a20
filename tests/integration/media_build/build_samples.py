"""Synthetic de-identified CT/MR files with Clinical Trial attributes (never real patient data)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
PROTOCOL_ID = "ACME-301"
PROTOCOL_NAME = "ACME 301 Phase III"


@dataclass(frozen=True)
class Exam:
    subject: str
    timepoint: str
    study_date: str
    modality: str
    study_uid: str
    series_uids: tuple[str, ...]


def trial_exams() -> list[Exam]:
    """Two subjects, two time points each: CT at baseline, MR at week 12."""
    exams = []
    for subject in ("S001", "S002"):
        for timepoint, date, modality in (
            ("BASELINE", "20240105", "CT"),
            ("WEEK12", "20240329", "MR"),
        ):
            series = (generate_uid(), generate_uid())
            exams.append(Exam(subject, timepoint, date, modality, generate_uid(), series))
    return exams


def write_image(
    path: Path,
    exam: Exam,
    series: int,
    instance: int,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    identity_removed: str = "YES",
    rows: int = 16,
) -> Path:
    """One small image as a de-identification leaves it: trial identity, dummy Type 1 keys."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(CT_IMAGE if exam.modality == "CT" else MR_IMAGE)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = exam.study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = ""
    ds.Modality = exam.modality
    ds.StudyDescription = f"{exam.modality} CHEST ABDOMEN"
    ds.SeriesDescription = f"AXIAL {series}"
    ds.PatientName = exam.subject
    ds.PatientID = exam.subject
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = identity_removed
    ds.DeidentificationMethod = "DICOM PS3.15 Annex E Basic Profile (trialship test data)"
    ds.ClinicalTrialSponsorName = "ACME Pharma"
    ds.ClinicalTrialProtocolID = PROTOCOL_ID
    ds.ClinicalTrialProtocolName = PROTOCOL_NAME
    ds.ClinicalTrialSiteID = "SITE07"
    ds.ClinicalTrialSiteName = ""
    ds.ClinicalTrialSubjectID = exam.subject
    ds.ClinicalTrialTimePointID = exam.timepoint
    ds.StudyInstanceUID = exam.study_uid
    ds.SeriesInstanceUID = exam.series_uids[series - 1]
    ds.StudyID = "1"
    ds.SeriesNumber = series
    ds.InstanceNumber = instance
    ds.ReferringPhysicianName = ""
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = rows
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    if transfer_syntax == JPEGBaseline8Bit:
        # Not a decodable JPEG, but headers are all a disc build reads; the syntax is the point.
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = encapsulate([b"\xff\xd8" + bytes(rows * rows) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
    else:
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = b"".join(
            ((i * instance + series) % 4096).to_bytes(2, "little") for i in range(rows * rows)
        )
    ds.save_as(
        path, enforce_file_format=True, implicit_vr=transfer_syntax == ImplicitVRLittleEndian
    )
    return path


def write_trial(folder: Path, *, per_series: int = 3) -> list[Path]:
    """Four exams, two series each: 24 files in folders named like an export."""
    paths = []
    for exam in trial_exams():
        sub = folder / exam.subject / exam.timepoint
        sub.mkdir(parents=True, exist_ok=True)
        for series in (1, 2):
            for i in range(1, per_series + 1):
                paths.append(write_image(sub / f"IM{series}_{i}.dcm", exam, series, i))
    return paths


def write_huge_sparse(path: Path, exam: Exam, size: int) -> Path:
    """A file whose header says `size` bytes of pixel data, stored sparse (no disk used).

    The build reads headers only before planning, so an exam too large for any disc can be
    tested without writing gigabytes.
    """
    write_image(path, exam, 1, 1, rows=2)
    raw = path.read_bytes()
    at = raw.rindex(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, Explicit VR LE
    length = size - at - 12
    with path.open("r+b") as stream:
        stream.seek(at)
        stream.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", length))
        stream.truncate(size)
    return path
