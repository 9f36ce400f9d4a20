"""A length that does not match its value makes everything after it a misreading: the element
that follows has no valid VR, or comes out of order. Such a file is refused (fail closed: what
was misread would escape the profile's rules and the leak check), whichever reader read it."""

from __future__ import annotations

import io
import struct

import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.unit.ct_files import ct_file
from trialship.intake.dicom_stream import UnreadableFile, read_instance

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _file(syntax: UID) -> bytes:
    return ct_file(
        syntax=syntax,
        StudyInstanceUID="1.2.3.4",
        PatientName="Doe^John",
        PatientID="MRN123456",
        PatientBirthDate="19600202",
        StudyID="STUDY77",
    )


def _misstate_name_length(data: bytes, delta: int, *, implicit: bool) -> bytes:
    at = data.index(b"Doe^John") - (4 if implicit else 2)
    fmt = "<L" if implicit else "<H"
    (length,) = struct.unpack_from(fmt, data, at)
    return data[:at] + struct.pack(fmt, length + delta) + data[at + struct.calcsize(fmt) :]


@pytest.mark.parametrize("delta", [4, -4, 6, 2])
def test_a_misstated_length_in_an_explicit_vr_file_is_refused(delta: int) -> None:
    data = _misstate_name_length(_file(ExplicitVRLittleEndian), delta, implicit=False)
    with pytest.raises(UnreadableFile, match=r"^malformed: element "):
        read_instance(io.BytesIO(data), len(data))


@pytest.mark.parametrize("delta", [4, -4, 8])
def test_a_misstated_length_in_an_implicit_vr_file_is_refused(delta: int) -> None:
    # Implicit VR has no VR to find wrong: the tags that follow come out of order instead.
    data = _misstate_name_length(_file(ImplicitVRLittleEndian), delta, implicit=True)
    with pytest.raises(UnreadableFile, match=r"malformed|truncated|not readable"):
        read_instance(io.BytesIO(data), len(data))


def test_the_well_formed_files_are_read() -> None:
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        data = _file(syntax)
        assert read_instance(io.BytesIO(data), len(data)).pixel_start is not None


def test_file_meta_without_a_preamble_is_read() -> None:
    data = _file(ExplicitVRLittleEndian)[128 + 4 :]  # (no preamble, no DICM: some exporters)
    instance = read_instance(io.BytesIO(data), len(data))
    assert instance.dataset.PatientName == "Doe^John" and instance.pixel_start is not None


def test_an_element_after_the_pixel_data_out_of_order_is_refused() -> None:
    # A second PatientName after the pixel data: pydicom reads that one, the header the other.
    name = b"Other^Patient"
    data = _file(ExplicitVRLittleEndian) + struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 14)
    data += name + b" "
    with pytest.raises(UnreadableFile, match=r"out of order .*\(after the pixel data\)$"):
        read_instance(io.BytesIO(data), len(data))
