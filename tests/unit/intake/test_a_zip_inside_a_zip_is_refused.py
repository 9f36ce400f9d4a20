"""A zip inside a zip is refused with a reason the user can act on, not read as "not DICOM"."""

from __future__ import annotations

from pathlib import Path

from tests.unit.intake.odd_inputs import zip_bytes
from trialship.intake.sources import SourceItem, SourceRejection, iter_sources

UNZIP_FIRST = "a zip inside a zip is not read: unzip it first"


def test_zips_inside_are_refused_and_the_other_entries_listed(tmp_path: Path) -> None:
    # A DICOM file's preamble is free: one may begin as a zip does, "DICM" follows it.
    dicom_like = b"PK\x03\x04" + b"\0" * 124 + b"DICM" + b"\x02\x00" * 20
    archive = tmp_path / "outer.zip"
    archive.write_bytes(
        zip_bytes(
            {
                "series/inner.zip": zip_bytes({"a.dcm": b"x"}),
                "series/renamed.dcm": zip_bytes({"b.dcm": b"y"}),
                "series/empty.zip": zip_bytes({}),
                "series/preamble.dcm": dicom_like,
                "series/short.dcm": b"PK",
            }
        )
    )
    found = {Path(e.label.split("!")[1]).name: e for e in iter_sources([archive])}
    refused = {name: e.reason for name, e in found.items() if isinstance(e, SourceRejection)}
    assert refused == {
        "inner.zip": UNZIP_FIRST,
        "renamed.dcm": UNZIP_FIRST,
        "empty.zip": UNZIP_FIRST,
    }
    assert sorted(name for name, e in found.items() if isinstance(e, SourceItem)) == [
        "preamble.dcm",
        "short.dcm",
    ]
    inner = found["inner.zip"]
    assert isinstance(inner, SourceRejection) and inner.identity.startswith("zip entry ")
