"""Builders for the standalone de-identification tests: files with PHI, written in code."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from trialship.cli import main

PHI = {
    "name": "Smithson^Johanna^Maria",
    "patient_id": "MRN4711001",
    "birth_date": "19500315",
    "accession": "ACC99887766",
    "institution": "Springfield Memorial Hospital",
    "phone": "+1 555 867 5309",
}
PROFILE = """\
[trial]
sponsor_name = "Acme Oncology"
protocol_id = "ACM-301"
protocol_name = "Acme trial"

[deid]
name = "acm-301"
options = ["retain_longitudinal_modified_dates", "clean_descriptors"]
uid_secret = "integration-secret-0123456789"
private_tags = "remove"
patient_age = "at_exam_capped"

[deid.keep]
keywords = []

[deid.replace]
InstitutionName = "{site_id}"
"""
STUDY = "1.2.826.0.1.3680043.99.7.1"


def instance(
    number: int = 1,
    *,
    study: str = STUDY,
    patient_id: str = PHI["patient_id"],
    accession: str = PHI["accession"],
    name: str = PHI["name"],
    pixels: bytes = b"\x10\x00" * 64,
    series: int = 3,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = f"{study}.{series}.{number}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{study}.{series}.{number}"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = f"{study}.{series}"
    ds.FrameOfReferenceUID = f"{study}.0"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = PHI["birth_date"]
    ds.PatientSex = "F"
    ds.PatientTelephoneNumbers = PHI["phone"]
    ds.AccessionNumber = accession
    ds.StudyDate = "20240110"
    ds.StudyTime = "101500"
    ds.Modality = "CT"
    ds.SeriesNumber = series
    ds.InstanceNumber = number
    ds.InstitutionName = PHI["institution"]
    ds.ReferringPhysicianName = "Welby^Marcus"
    ds.StudyDescription = "CT chest for Johanna Smithson"
    ds.RequestAttributesSequence = [Dataset()]
    ds.RequestAttributesSequence[0].AccessionNumber = accession
    ds.RequestAttributesSequence[0].RequestedProcedureID = "RP778899"
    block = ds.private_block(0x0029, "ACME HOSPITAL", create=True)
    block.add_new(0x01, "LO", f"pid={patient_id}")
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels
    return ds


def write(ds: Dataset, path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=kwargs.pop("enforce", True), **kwargs)  # type: ignore[arg-type]
    return path


class Cli:
    """Runs `trialship` with a data folder of its own."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "instance"
        self.profile = tmp / "profile.toml"
        self.profile.write_text(PROFILE)

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--data", str(self.data), *args])

    def deid(self, *args: str, out: Path, subject: bool = True) -> Result:
        extra = ["--subject", "ACM-0001", "--site", "S01", "--timepoint", "BL"] if subject else []
        return self("deid", *args, "--out", str(out), "--profile", str(self.profile), *extra)
