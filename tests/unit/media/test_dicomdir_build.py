"""The DICOMDIR writer: records, every offset, required keys, and linear time."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence

from trialship.media import capacity
from trialship.media.dicomdir import DirEntry, build_dicomdir, number_entries
from trialship.media.errors import DicomdirError

FILESET_UID = "2.25.1234567890"
CT = "1.2.840.10008.5.1.4.1.1.2"
KO = "1.2.840.10008.5.1.4.1.1.88.59"


def entry(patient: int, study: int, series: int, instance: int, **changes: object) -> DirEntry:
    base = DirEntry(
        patient_id=f"SUBJ{patient:03d}",
        patient_name=f"SUBJECT^{patient:03d}",
        study_instance_uid=f"2.25.{patient}{study:03d}",
        study_date="20240105",
        study_time="101500",
        study_id="1",
        accession_number="",
        study_description="BASELINE",
        series_instance_uid=f"2.25.{patient}{study:03d}{series:03d}",
        modality="CT",
        series_number=series,
        sop_class_uid=CT,
        sop_instance_uid=f"2.25.{patient}{study:03d}{series:03d}{instance:06d}",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        instance_number=instance,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def synthetic(patients: int, studies: int, series: int, instances: int) -> list[DirEntry]:
    return number_entries(
        entry(p, s, e, i)
        for p in range(1, patients + 1)
        for s in range(1, studies + 1)
        for e in range(1, series + 1)
        for i in range(1, instances + 1)
    )


def build(entries: list[DirEntry]) -> bytes:
    return build_dicomdir(
        entries,
        fileset_id="TRIAL01",
        fileset_uid=FILESET_UID,
        implementation_class_uid="2.25.42",
        implementation_version_name="TRIALSHIP_0",
    )


def walk(ds: Dataset, offset: int, depth: int = 0) -> Iterator[tuple[int, Dataset]]:
    """Follow the offsets the way a reader does, never the sequence order."""
    by_offset = {rec.seq_item_tell: rec for rec in ds.DirectoryRecordSequence}
    while offset:
        record = by_offset[offset]
        yield depth, record
        lower = record.OffsetOfReferencedLowerLevelDirectoryEntity
        if lower:
            yield from walk(ds, lower, depth + 1)
        offset = record.OffsetOfTheNextDirectoryRecord


def test_offsets_link_patients_studies_series_and_images() -> None:
    data = build(synthetic(2, 2, 2, 3))
    ds = pydicom.dcmread(io.BytesIO(data))
    # Each offset points at an Item tag in the bytes, counted from the start of the file.
    for record in ds.DirectoryRecordSequence:
        assert data[record.seq_item_tell : record.seq_item_tell + 4] == b"\xfe\xff\x00\xe0"
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10"
    assert ds.file_meta.MediaStorageSOPInstanceUID == FILESET_UID
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.FileSetID == "TRIAL01"
    assert ds.FileSetConsistencyFlag == 0
    walked = list(walk(ds, ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity))
    assert len(walked) == len(ds.DirectoryRecordSequence) == 2 + 4 + 8 + 24
    kinds = [(depth, rec.DirectoryRecordType) for depth, rec in walked[:4]]
    assert kinds == [(0, "PATIENT"), (1, "STUDY"), (2, "SERIES"), (3, "IMAGE")]
    last_root = ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity
    patients = [rec for depth, rec in walked if depth == 0]
    assert patients[-1].seq_item_tell == last_root
    assert all(rec.RecordInUseFlag == 0xFFFF for _, rec in walked)


def test_image_records_reference_their_files() -> None:
    ds = pydicom.dcmread(io.BytesIO(build(synthetic(1, 1, 1, 2))))
    image = ds.DirectoryRecordSequence[3]
    assert image.DirectoryRecordType == "IMAGE"
    assert list(image.ReferencedFileID) == ["DICOM", "P0000001", "S0000001", "E0000001", "I0000001"]
    assert image.ReferencedSOPClassUIDInFile == CT
    assert image.ReferencedTransferSyntaxUIDInFile == "1.2.840.10008.1.2.1"
    assert image.InstanceNumber == 1


def test_pydicom_file_set_reads_every_instance(tmp_path: Path) -> None:
    entries = synthetic(2, 1, 2, 5)
    (tmp_path / "DICOMDIR").write_bytes(build(entries))
    with pytest.warns(UserWarning, match="does not exist"):  # no image files in a unit test
        fs = FileSet(tmp_path / "DICOMDIR")
    assert fs.ID == "TRIAL01"
    assert fs.UID == FILESET_UID
    # FileSet drops records whose files are missing, so count the records it parsed instead.
    ds = pydicom.dcmread(tmp_path / "DICOMDIR")
    images = [r for r in ds.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    assert len(images) == len(entries)


def test_a_key_object_gets_its_own_record_with_its_keys() -> None:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113000", "DCM", "Of Interest"
    extra = (
        DataElement("ContentDate", "DA", "20240105"),
        DataElement("ContentTime", "TM", "101600"),
        DataElement("ConceptNameCodeSequence", "SQ", Sequence([code])),
    )
    ko = entry(1, 1, 9, 1, sop_class_uid=KO, modality="KO", extra=extra)
    ds = pydicom.dcmread(io.BytesIO(build(number_entries([entry(1, 1, 1, 1), ko]))))
    record = ds.DirectoryRecordSequence[-1]
    assert record.DirectoryRecordType == "KEY OBJECT DOC"
    assert record.ConceptNameCodeSequence[0].CodeMeaning == "Of Interest"
    assert record.ContentDate == "20240105"


def test_a_key_object_without_its_content_date_is_refused() -> None:
    ko = entry(1, 1, 9, 1, sop_class_uid=KO, modality="KO")
    with pytest.raises(DicomdirError, match=r"ContentDate is empty .* KEY OBJECT DOC"):
        build(number_entries([ko]))


@pytest.mark.parametrize(
    ("field", "keyword"),
    [
        ("patient_id", "PatientID"),
        ("study_date", "StudyDate"),
        ("study_time", "StudyTime"),
        ("study_id", "StudyID"),
        ("modality", "Modality"),
        ("series_number", "SeriesNumber"),
        ("instance_number", "InstanceNumber"),
    ],
)
def test_an_empty_required_key_is_named_with_its_file(field: str, keyword: str) -> None:
    value = None if field.endswith("number") else ""
    bad = number_entries([entry(1, 1, 1, 1, **{field: value})])
    with pytest.raises(DicomdirError, match=rf"{keyword} is empty in DICOM/P0000001/.*PS3\.3 F\.5"):
        build(bad)


def test_no_entries_is_refused() -> None:
    with pytest.raises(DicomdirError, match="at least one instance"):
        build([])


def test_a_study_under_two_patients_is_refused() -> None:
    moved = entry(2, 1, 1, 1, study_instance_uid=entry(1, 1, 1, 1).study_instance_uid)
    with pytest.raises(DicomdirError, match="filed under patients"):
        build(number_entries([entry(1, 1, 1, 1), moved]))


def test_a_non_ascii_name_is_written_as_utf8_with_its_character_set() -> None:
    ds = pydicom.dcmread(io.BytesIO(build(number_entries([entry(1, 1, 1, 1, patient_name="Zoë")]))))
    patient = ds.DirectoryRecordSequence[0]
    assert patient.SpecificCharacterSet == "ISO_IR 192"
    assert patient.PatientName == "Zoë"


def test_twenty_thousand_instances_build_in_seconds_and_within_the_size_estimate() -> None:
    entries = synthetic(4, 5, 10, 100)
    assert len(entries) == 20_000
    start = time.perf_counter()
    data = build(entries)
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # generous for slow CI; about 0.7 s on a laptop
    ds = pydicom.dcmread(io.BytesIO(data))
    assert len(ds.DirectoryRecordSequence) == 4 + 20 + 200 + 20_000
    # The planner's per-record estimate (capacity.py) must stay an over-estimate.
    estimate = (
        capacity.DICOMDIR_HEADER_BYTES
        + 20_000 * capacity.DICOMDIR_IMAGE_RECORD_BYTES
        + 224 * capacity.DICOMDIR_SERIES_RECORD_BYTES
    )
    assert len(data) < estimate
