"""The fast header reader builds exactly what pydicom's dcmread(stop_before_pixels=True) builds,
and the fast sequence conversion exactly what pydicom's conversion builds, or they leave the work
to pydicom."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from trialship.deid.raw_parse import sequence_element
from trialship.intake.header_reader import read_header

_DATASET_ATTRIBUTES = (
    "_parent_encoding",
    "_read_little",
    "_read_implicit",
    "_read_charset",
    "is_undefined_length_sequence_item",
    "seq_item_tell",
    "file_tell",
    "_pixel_rep",
)


def _differences(fast: Dataset, slow: Dataset, path: str = "") -> list[str]:
    found = [
        f"{path}{name}"
        for name in _DATASET_ATTRIBUTES
        if getattr(fast, name, "missing") != getattr(slow, name, "missing")
    ]
    if set(fast.__dict__) != set(slow.__dict__):
        found.append(f"{path}attributes")
    if list(fast._dict) != list(slow._dict):
        return [*found, f"{path}tags"]
    for tag, mine in fast._dict.items():
        theirs: Any = slow._dict[tag]
        where = f"{path}{tag}"
        if type(mine) is not type(theirs):
            found.append(f"{where} type")
        elif isinstance(mine, RawDataElement):
            if tuple(mine) != tuple(theirs):
                found.append(f"{where} raw")
        elif (mine.VR, mine.file_tell, mine.is_undefined_length) != (
            theirs.VR,
            theirs.file_tell,
            theirs.is_undefined_length,
        ) or set(mine.__dict__) != set(theirs.__dict__):
            found.append(f"{where} element")
        elif mine.VR == "SQ":
            undefined = getattr(mine.value, "is_undefined_length", None)
            if len(mine.value) != len(theirs.value) or undefined != getattr(
                theirs.value, "is_undefined_length", None
            ):
                found.append(f"{where} sequence")
            for index, (left, right) in enumerate(zip(mine.value, theirs.value, strict=False)):
                found += _differences(left, right, f"{where}[{index}].")
    return found


def _compare(data: bytes) -> bool:
    """True when the fast reader read `data` (and matched pydicom), False when it declined."""
    fast_fp = io.BytesIO(data)
    fast = read_header(fast_fp, data)
    if fast is None:
        assert fast_fp.tell() == 0
        return False
    slow_fp = io.BytesIO(data)
    slow = pydicom.dcmread(slow_fp, stop_before_pixels=True)
    assert fast_fp.tell() == slow_fp.tell()
    assert _differences(fast, slow) == []
    assert _differences(fast.file_meta, slow.file_meta, "file_meta.") == []
    for name in ("preamble", "original_encoding", "original_character_set", "filename"):
        assert getattr(fast, name) == getattr(slow, name), name
    return True


def _testdata() -> list[Path]:
    return sorted(Path(name) for name in get_testdata_files() if Path(name).is_file())


def test_a_file_reads_alike_as_a_file() -> None:
    path = next(path for path in _testdata() if path.name == "CT_small.dcm")
    data = path.read_bytes()
    with path.open("rb") as fast_fp, path.open("rb") as slow_fp:
        fast = read_header(fast_fp, data)
        slow = pydicom.dcmread(slow_fp, stop_before_pixels=True)
        assert fast is not None
        assert fast_fp.tell() == slow_fp.tell()
        assert _differences(fast, slow) == []
        for name in ("filename", "timestamp", "fileobj_type", "buffer"):
            assert getattr(fast, name) == getattr(slow, name), name


def test_pydicoms_test_files_read_alike_or_are_left_to_pydicom() -> None:
    read = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _testdata():
            data = path.read_bytes()
            try:
                pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            except Exception:
                assert read_header(io.BytesIO(data), data) is None, path.name
                continue
            read += _compare(data)
    assert read > 100


def _file(syntax: str = ExplicitVRLittleEndian, *, nested: bool = True) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Müller^Jürgen"
    if nested:
        inner = Dataset()
        inner.CodeValue = "X"
        item = Dataset()
        item.SpecificCharacterSet = "ISO_IR 192"
        item.PatientID = "Ø1"
        item.ProcedureCodeSequence = [inner]
        ds.OtherPatientIDsSequence = [item, Dataset()]
    ds.BitsAllocated = 16
    ds.PixelData = b"\0\0"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_nested_sequences_and_character_sets_read_alike() -> None:
    assert _compare(_file())


def test_undefined_length_sequences_and_items_read_alike() -> None:
    data = _file()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds["OtherPatientIDsSequence"].is_undefined_length = True
    for item in ds.OtherPatientIDsSequence:
        item.is_undefined_length_sequence_item = True
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert _compare(buffer.getvalue())


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]
)
def test_other_encodings_are_left_to_pydicom(syntax: str) -> None:
    data = _file(syntax, nested=False)
    assert read_header(io.BytesIO(data), data) is None


def test_a_file_without_preamble_is_left_to_pydicom() -> None:
    data = _file()[128 + 4 :]
    assert read_header(io.BytesIO(data), data) is None


def test_truncated_files_read_alike_or_are_left_to_pydicom() -> None:
    data = _file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cut in range(0, len(data), 3):
            chunk = data[:cut]
            try:
                pydicom.dcmread(io.BytesIO(chunk), stop_before_pixels=True)
            except Exception:
                assert read_header(io.BytesIO(chunk), chunk) is None, cut
                continue
            _compare(chunk)


def _convert_both(ours: Dataset, theirs: Dataset) -> int:
    """Convert every raw sequence at every depth, here and by pydicom; the number converted."""
    converted = 0
    for key, elem in list(ours._dict.items()):
        if elem.VR != "SQ":
            continue
        if isinstance(elem, RawDataElement):
            assert sequence_element(ours, key) is ours._dict[key]
            theirs[key]  # pydicom converts it
            converted += 1
        for mine, other in zip(ours[key].value or (), theirs[key].value or (), strict=True):
            converted += _convert_both(mine, other)
    return converted


def _sequences_convert_alike(data: bytes) -> int:
    ours = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    theirs = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    converted = _convert_both(ours, theirs)
    assert _differences(ours, theirs) == []
    return converted


def test_raw_sequences_convert_alike() -> None:
    converted = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _testdata():
            data = path.read_bytes()
            try:
                pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            except Exception:
                continue
            converted += _sequences_convert_alike(data)
        converted += _sequences_convert_alike(_file())
    assert converted > 50
