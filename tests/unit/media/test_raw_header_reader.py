"""The raw header reader gives exactly what pydicom gives, for every file pydicom ships."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from trialship.dicom_header import NotDicom, Unsupported, read_raw_header
from trialship.media import entries
from trialship.media.errors import DicomdirError

TRIAL_KEYS = (
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "ClinicalTrialProtocolID",
    "ClinicalTrialSubjectID",
    "SeriesDescription",
)
PYDICOM_FILES = sorted(
    p
    for p in (Path(os.path.dirname(pydicom.data.__file__)) / "test_files").rglob("*")
    if p.is_file()
)


def both(path: Path) -> tuple[object, object]:
    """(raw reader's answer, pydicom's answer), an exception counting as its type's name."""
    answers = []
    for read in (entries.read_entry, lambda p, k: entries._pydicom_entry(p, k, None)):
        try:
            answers.append(read(path, TRIAL_KEYS))
        except DicomdirError as exc:
            answers.append(type(exc).__name__)
    return answers[0], answers[1]


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=lambda p: p.name)
def test_every_pydicom_test_file_reads_the_same_as_with_pydicom(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw, reference = both(path)
    assert raw == reference


def write(path: Path, ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)
    return path


def image(**values: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesNumber = "SUBJ001", generate_uid(), 3
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_nested_sequences_of_undefined_length_are_skipped(tmp_path: Path, syntax: str) -> None:
    inner = Dataset()
    inner.CodeValue, inner.CodeMeaning = "113100", "Basic Application Confidentiality Profile"
    item = Dataset()
    item.ReferencedSOPInstanceUID = generate_uid()
    item.ConceptNameCodeSequence = Sequence([inner])  # a sequence in a sequence
    ds = image(
        ReferencedImageSequence=Sequence([item, item]),
        DeidentificationMethodCodeSequence=Sequence([inner]),
        PatientName="Müller^Jürgen",  # needs the character set
        SpecificCharacterSet="ISO_IR 100",
        SeriesDescription="AX\\COR",  # two values: pydicom's str() of a MultiValue
    )
    path = write(tmp_path / "seq.dcm", ds, syntax)
    raw, reference = both(path)
    assert raw == reference
    entry, values = entries.read_entry(path, TRIAL_KEYS)
    assert entry.patient_name == "Müller^Jürgen" and entry.series_number == 3
    assert values["SeriesDescription"] == "['AX', 'COR']"


def test_a_file_without_the_dicom_prefix_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a DICOM file" * 20)
    with pytest.raises(NotDicom):
        read_raw_header(path, [0x00100020])
    with pytest.raises(entries.NotDicomError):
        entries.read_entry(path)


def test_big_endian_files_are_left_to_pydicom(tmp_path: Path) -> None:
    big = Path(pydicom.data.get_testdata_file("MR_small_bigendian.dcm"))
    with pytest.raises(Unsupported):
        read_raw_header(big, [0x00100020])
    assert entries.read_entry(big) == entries._pydicom_entry(big, (), None)


def test_reading_stops_before_the_pixel_data(tmp_path: Path) -> None:
    ds = image()
    ds.PixelData = b"\0" * 8_000_000
    ds["PixelData"].VR = "OB"
    path = write(tmp_path / "big.dcm", ds)
    data = path.read_bytes()
    at = data.index(b"\xe0\x7f\x10\x00OB")
    path.write_bytes(data[: at + 12])  # the pixel data element's header, then nothing
    entry = entries.entry_from_file(path)  # never needs a pixel byte
    assert entry.patient_id == "SUBJ001" and entry.series_number == 3
