"""Native pixel data must hold every frame its header describes: a file whose pixel data is
shorter (cut, or a header that lies about frames or size) is refused, not passed on broken."""

from __future__ import annotations

import io

import pytest
from pydicom.data import get_testdata_file

from tests.unit.ct_files import ct_file
from trialship.intake.dicom_stream import UnreadableFile, read_instance


def _file(pixels: bytes, **header: int) -> bytes:
    return ct_file(
        rows=header.get("rows", 64),
        columns=header.get("columns", 64),
        frames=header.get("frames"),
        pixels=pixels,
    )


@pytest.mark.parametrize(
    ("pixels", "header", "needed"),
    [
        (b"\0" * 10, {}, 8192),
        (b"", {}, 8192),
        (b"\0" * 8192, {"frames": 999_999_999}, 8191_999_991_808),
        (b"\0" * 16, {"rows": 65535, "columns": 65535}, 8589672450),
    ],
    ids=["short", "empty", "absurd-frames", "absurd-size"],
)
def test_pixel_data_shorter_than_its_header_says_is_refused(
    pixels: bytes, header: dict[str, int], needed: int
) -> None:
    data = _file(pixels, **header)
    with pytest.raises(UnreadableFile, match=f"truncated: the pixel data holds .* need {needed}$"):
        read_instance(io.BytesIO(data), len(data))


def test_whole_pixel_data_and_subsampled_colour_are_read() -> None:
    data = _file(b"\0" * 8192)
    assert read_instance(io.BytesIO(data), len(data)).pixel_length == 8192
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm")  # 2 bytes a pixel, not 3
    with open(str(path), "rb") as fp:
        whole = fp.read()
    assert read_instance(io.BytesIO(whole), len(whole)).pixel_length == 20000


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_the_check_reads_the_sizes_raw_in_each_byte_order(name: str) -> None:
    # Read from the raw bytes, the sizes stay unconverted (written back as they came), and agree
    # with what pydicom makes of them.
    import pydicom

    from trialship.deid.elements import unsigned_short

    with open(str(get_testdata_file(name)), "rb") as fp:
        whole = fp.read()
    ds = read_instance(io.BytesIO(whole), len(whole)).dataset
    expected = pydicom.dcmread(io.BytesIO(whole), stop_before_pixels=True)
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        tag = expected.data_element(keyword).tag
        assert ds._dict[tag].__class__.__name__ == "RawDataElement"
        assert unsigned_short(ds, keyword) == expected[keyword].value
    ds.Rows  # noqa: B018 (converted now: only pydicom says, so the helper declines)
    assert unsigned_short(ds, "Rows") is None
