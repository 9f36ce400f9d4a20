"""A deflated data set is inflated a chunk at a time into a scratch file and read from there:
memory stays bounded, a deflate bomb is refused, the output is Explicit VR Little Endian."""

from __future__ import annotations

import hashlib
import io
import os
import resource

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from tests.unit.ct_files import ct_file
from trialship.intake.dicom_stream import UnreadableFile, read_instance, write_instance


def _deflated(pixels: bytes, frames: int) -> bytes:
    return ct_file(
        syntax=DeflatedExplicitVRLittleEndian,
        rows=512,
        columns=512,
        frames=frames,
        pixels=pixels,
        PatientName="Doe^John",
    )


def test_a_deflated_file_is_read_and_written_as_explicit_vr_little_endian() -> None:
    pixels = os.urandom(512 * 512 * 2 * 2)  # (random: deflate cannot shrink it)
    data = _deflated(pixels, 2)
    instance = read_instance(io.BytesIO(data), len(data))
    assert instance.body is not None and instance.input_size == len(data)
    out = io.BytesIO()
    input_sha, _ = write_instance(instance, io.BytesIO(data), out)
    assert input_sha == hashlib.sha256(data).hexdigest()  # the input's own bytes
    written = pydicom.dcmread(io.BytesIO(out.getvalue()))
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert written.PixelData == pixels and written.PatientName == "Doe^John"


def test_a_deflate_bomb_is_refused_without_inflating_it_in_memory() -> None:
    data = _deflated(b"\0" * (512 * 512 * 2 * 128), 128)  # 64 MiB of zeros: 70 KB
    assert len(data) < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnreadableFile, match="deflate bomb guard"):
        read_instance(io.BytesIO(data), len(data))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 32  # (pydicom's own reading took four times the inflated size)
