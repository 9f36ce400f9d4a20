"""Synthetic exams with realistic PHI in their headers, and a trial ready to import them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from trialship.app import Runtime
from trialship.cli import main
from trialship.registry.models import Trial
from trialship.services import subjects, timepoints, trials
from trialship.services.authz import Actor
from trialship.services.exam_import import ImportSummary, import_exams
from trialship.signing import load_or_create_signing_key

SYSTEM = Actor.command_line("tests")
PHI = {
    "name": "Kowalczyk^Agnieszka^Maria",
    "patient_id": "MRN5520931",
    "issuer": "ST-MARY-HOSP",
    "birth_date": "19580412",
    "accession": "ACC20240117X",
    "institution": "Saint Mary Regional Hospital",
    "address": "12 Linden Street, Springfield",
    "phone": "+1 555 201 7788",
}
# Strings that must never appear in a de-identified file.
FORBIDDEN = [
    "Kowalczyk",
    "Agnieszka",
    PHI["patient_id"],
    PHI["accession"],
    PHI["birth_date"],
    "Saint Mary",
    "Linden Street",
    "555 201 7788",
]
BASELINE = dt.date(2024, 1, 10)
STUDY = "1.2.826.0.1.3680043.99.31.1"


def exam_instance(
    number: int = 1,
    *,
    study: str = STUDY,
    series: int = 2,
    patient_id: str = PHI["patient_id"],
    issuer: str = PHI["issuer"],
    study_date: str = "20240111",
    modality: str = "CT",
    pixels: bytes = b"\x20\x01" * 64,
) -> Dataset:
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    uid = f"{study}.{series}.{number}"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = f"{study}.{series}"
    ds.FrameOfReferenceUID = f"{study}.0"
    ds.PatientName = PHI["name"]
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = PHI["birth_date"]
    ds.PatientSex = "F"
    ds.PatientAddress = PHI["address"]
    ds.PatientTelephoneNumbers = PHI["phone"]
    ds.AccessionNumber = PHI["accession"]
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "091500"
    ds.Modality = modality
    ds.SeriesNumber = series
    ds.InstanceNumber = number
    ds.InstitutionName = PHI["institution"]
    ds.ReferringPhysicianName = "Marchetti^Paolo"
    ds.StudyDescription = "CT chest Kowalczyk"
    ds.SeriesDescription = "AXIAL 1.25"
    request = Dataset()
    request.AccessionNumber = PHI["accession"]
    request.RequestedProcedureID = "RP5520931"
    code = Dataset()
    code.CodeValue = "CTCHEST"
    code.CodingSchemeDesignator = "99LOCAL"
    code.CodeMeaning = "CT Chest"
    request.RequestedProcedureCodeSequence = [code]
    ds.RequestAttributesSequence = [request]
    other = Dataset()
    other.PatientID = PHI["patient_id"]
    other.IssuerOfPatientID = PHI["issuer"]
    ds.OtherPatientIDsSequence = [other]
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_exam(folder: Path, count: int = 3, **kwargs: Any) -> list[Path]:
    return [
        write(exam_instance(n, **kwargs), folder / f"img{n:03d}.dcm") for n in range(1, count + 1)
    ]


def seed_trial(runtime: Runtime, *, windows: tuple[tuple[str, int, int, int], ...] = ()) -> Trial:
    """Trial ACM-301 with site S01, subject SUBJ-001 (MRN with issuer) and time points."""
    windows = windows or (("BL", 0, 3, 3), ("W12", 84, 7, 7))
    today = runtime.today()
    with runtime.db.unit_of_work() as session:
        trial = trials.create_trial(
            session,
            SYSTEM,
            {
                "protocol_id": "ACM-301",
                "sponsor_name": "Acme Oncology",
                "short_name": "Acme 301",
                "protocol_name": "Acme trial",
            },
        )
        trials.add_site(session, SYSTEM, trial, {"site_id": "S01", "name": "North"}, today)
        subjects.add_subject(
            session,
            SYSTEM,
            runtime.vault,
            trial,
            {
                "subject_id": "SUBJ-001",
                "reading_id": "R-001",
                "site_id": "S01",
                "baseline_date": BASELINE.isoformat(),
                "identifiers": f"{PHI['patient_id']}|{PHI['issuer']}",
            },
            today,
        )
        subjects.add_subject(
            session,
            SYSTEM,
            runtime.vault,
            trial,
            {"subject_id": "SUBJ-002", "site_id": "S01", "baseline_date": BASELINE.isoformat()},
            today,
        )
        for order, (code, day, minus, plus) in enumerate(windows, start=1):
            timepoints.add_timepoint(
                session,
                SYSTEM,
                trial,
                {
                    "timepoint_id": code,
                    "description": f"visit {code}",
                    "order": order,
                    "day_offset": day,
                    "window_minus": minus,
                    "window_plus": plus,
                },
                today,
            )
        return trial


def registered_trial_cli(data: Path) -> Callable[..., Result]:
    """`trialship --data DATA ...` on a fresh data folder holding trial ACM-301 with site S01,
    subject SUBJ-001 (registered with PHI's patient ID) and time point BL (needs
    TRIALSHIP_ADMIN_PASSWORD set)."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--data", str(data), *args])

    assert run("init", "--admin-email", "admin@example.org").exit_code == 0
    for args in (
        ["trial", "add", "--protocol-id", "ACM-301", "--sponsor", "Acme", "--short-name", "A"],
        ["site", "add", "--trial", "ACM-301", "S01"],
        [
            "subject",
            "add",
            "--trial",
            "ACM-301",
            "SUBJ-001",
            "--site",
            "S01",
            "--baseline",
            "2024-01-10",
            "--mrn",
            f"{PHI['patient_id']}|{PHI['issuer']}",
        ],
        ["timepoint", "add", "--trial", "ACM-301", "BL", "--minus", "3", "--plus", "3"],
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
    return run


def import_files(runtime: Runtime, trial: Trial, *sources: Path, **options: Any) -> ImportSummary:
    """`import_exams` of `sources` into `trial`, as the command line runs it (at a fixed time)."""
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        return import_exams(
            session,
            SYSTEM,
            runtime.vault,
            session.merge(trial),
            list(sources),
            data_dir=data,
            signing_key=load_or_create_signing_key(data),
            today=runtime.today(),
            now=options.pop("now", dt.datetime(2024, 2, 1, 12, 0)),
            **options,
        )
