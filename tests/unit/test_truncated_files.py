"""A file cut short anywhere inside an element is refused as truncated, whatever its encoding
and whichever reader (the fast one, or pydicom for large and unusual files) reads it.

A cut exactly between two top-level elements leaves a shorter but well-formed data set: no
reader can tell it from a file that never had the rest, so those cuts are not asserted on.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from trialship.intake import dicom_stream
from trialship.intake.dicom_stream import UnreadableFile, read_instance

# Cuts inside the file meta make pydicom warn about the cut values it reads.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def _instance(syntax: UID) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientName = "Doe^John"
    ds.PatientID = "MRN123"
    code = Dataset()
    code.CodeValue, code.CodeMeaning = "123", "Thing"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b"\x01\x00" * 16
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    ds.preamble = b"\0" * 128
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _boundaries(data: bytes) -> set[int]:
    """Where each top-level element of the data set starts, and the end of the file."""
    ds = pydicom.dcmread(io.BytesIO(data))
    implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    starts = {len(data)}
    for tag in ds.keys():  # noqa: SIM118 (raw elements, not converted ones)
        raw = ds.get_item(tag)
        long_header = not implicit and raw.VR in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR")
        starts.add(raw.value_tell - (12 if long_header else 8))
    return starts


@pytest.mark.parametrize("whole", [True, False], ids=["read-whole", "streamed-by-pydicom"])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_every_cut_inside_an_element_is_refused_as_truncated(
    syntax: UID, whole: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not whole:
        monkeypatch.setattr(dicom_stream, "WHOLE", 0)
    data = _instance(syntax)
    boundaries = _boundaries(data)
    accepted = []
    for cut in range(1, len(data)):
        if cut in boundaries:
            continue
        try:
            read_instance(io.BytesIO(data[:cut]), cut)
        except UnreadableFile:
            continue
        accepted.append(cut)
    assert accepted == []


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_a_cut_inside_the_pixel_data_header_names_truncation(syntax: UID) -> None:
    data = _instance(syntax)
    pixels = data.rfind(
        b"\xe0\x7f\x10\x00" if syntax != ExplicitVRBigEndian else b"\x7f\xe0\x00\x10"
    )
    for cut in (pixels + 4, pixels + 6):
        with pytest.raises(UnreadableFile, match="truncated"):
            read_instance(io.BytesIO(data[:cut]), cut)


def test_the_whole_file_still_reads_with_its_pixel_data() -> None:
    for syntax in SYNTAXES:
        data = _instance(syntax)
        instance = read_instance(io.BytesIO(data), len(data))
        assert instance.pixel_start is not None and instance.pixel_end == len(data)


def test_a_deflated_file_cut_short_says_so() -> None:
    from pathlib import Path

    from pydicom.data import get_testdata_file

    data = Path(str(get_testdata_file("image_dfl.dcm"))).read_bytes()
    cut = data[: len(data) // 2]
    with pytest.raises(UnreadableFile, match="deflated data set is truncated or corrupt"):
        read_instance(io.BytesIO(cut), len(cut))
