"""Shared builders for the deid tests (a plain module: fixtures would hide the data)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from trialship.deid import DeidContext, Option, PrivateTags, Profile, TrialInfo

SECRET = b"unit-test-secret-0123456789"
SUBJECT = "ACM-0001"
SHIFT = -100


def make_profile(
    options: Iterable[Option] = (),
    *,
    private_tags: PrivateTags = PrivateTags.REMOVE,
    **fields: Any,
) -> Profile:
    return Profile(
        trial=TrialInfo(sponsor_name="Acme Oncology", protocol_id="ACM-301", protocol_name="Acme"),
        name="unit",
        options=frozenset(options),
        uid_secret=SECRET,
        private_tags=private_tags,
        **fields,
    )


def make_ctx(**fields: Any) -> DeidContext:
    values: dict[str, Any] = {
        "subject_id": SUBJECT,
        "uid_secret": SECRET,
        "date_shift_days": SHIFT,
        "site_id": "S01",
        "site_name": "Site One",
        "timepoint_id": "BASELINE",
        "sponsor_name": "Acme Oncology",
        "protocol_id": "ACM-301",
    }
    values.update(fields)
    return DeidContext(**values)


def patient_dataset() -> Dataset:
    """A small CT-like instance with a full set of identifying values."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.99.1.3"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.99.1.3"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.99.1.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.99.1.2"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.99.1.4"
    ds.PatientName = "Smithson^Johanna^Maria"
    ds.PatientID = "MRN4711001"
    ds.PatientBirthDate = "19500315"
    ds.PatientSex = "F"
    ds.PatientAddress = "12 Elmwood Avenue^Springfield"
    ds.PatientTelephoneNumbers = "+1 555 867 5309"
    ds.AccessionNumber = "ACC99887766"
    ds.StudyDate = "20240110"
    ds.StudyTime = "101500"
    ds.SeriesDate = "20240110"
    ds.ContentDate = "20240110"
    ds.AcquisitionDateTime = "20240110101630.000000+0100"
    ds.StudyID = "ST1234"
    ds.Modality = "CT"
    ds.SeriesNumber = "3"
    ds.InstanceNumber = "7"
    ds.InstitutionName = "Springfield Memorial Hospital"
    ds.ReferringPhysicianName = "Welby^Marcus"
    ds.StudyDescription = "CT chest for Johanna Smithson"
    ds.SeriesDescription = "Axial 5mm"
    return ds
