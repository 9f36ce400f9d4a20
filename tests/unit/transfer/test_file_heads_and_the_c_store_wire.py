"""The raw head reader agrees with pydicom; C-STORE command sets encode as pynetdicom's do."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode

from trialship.transfer.dicomfile import dataset_offset, read_head
from trialship.transfer.dimse_wire import parse_command, store_command
from trialship.transfer.package import _read_header_pydicom, read_header


def _bundled() -> list[Path]:
    folder = Path(str(get_testdata_file("CT_small.dcm"))).parent
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_the_fast_header_reader_agrees_with_pydicom_on_every_bundled_file() -> None:
    files = _bundled()
    fast = 0
    for path in files:
        data = path.read_bytes()
        fast += read_head(data[: 64 << 10], whole=len(data) <= 64 << 10) is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's complaints about odd test files
            assert read_header(path) == _read_header_pydicom(path), path.name
    assert fast > len(files) * 3 // 4  # most take the fast path, the rest are pydicom's


def _nested(syntax: str, *, removed: str | None) -> bytes:
    inner = Dataset()
    inner.CodeValue = "X"
    inner.ContentSequence = Sequence([Dataset()])
    inner.ContentSequence[0].CodeMeaning = "deep"
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = Sequence([inner, Dataset()])
    ds.ProcedureCodeSequence = Sequence([])
    ds.PatientName = "SUBJ"
    if removed is not None:
        ds.PatientIdentityRemoved = removed
    for keyword in ("ReferencedImageSequence", "ProcedureCodeSequence"):
        ds[keyword].is_undefined_length = True
    ds.ContentSequence = Sequence([Dataset()])  # (0040,A730): after the flag
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("removed", ["YES", "NO ", None])
def test_undefined_length_sequences_before_the_flag_are_skipped(
    syntax: str, removed: str | None
) -> None:
    data = _nested(syntax, removed=removed)
    head = read_head(data, whole=True)
    assert head is not None
    ds = dcmread(io.BytesIO(data))
    assert head.sop_instance_uid == ds.SOPInstanceUID
    assert head.identity_removed == (None if removed is None else removed.strip())
    assert head.dataset_offset == dataset_offset(data)
    # the bytes end before the head does: unsure, so pydicom decides
    assert read_head(data[: len(data) // 2], whole=False) is None


def test_the_c_store_command_set_is_encoded_as_pynetdicom_encodes_it() -> None:
    primitive = C_STORE()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = "1.2.3.45"
    primitive.Priority = 0
    primitive.DataSet = io.BytesIO(b"\0\0")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    theirs = encode(message.command_set, True, True)
    assert store_command("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", 7) == theirs
    values = parse_command(theirs)
    assert values[0x0110] == b"\x07\x00" and values[0x1000] == b"1.2.3.45"
