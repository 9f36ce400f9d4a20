"""Fixtures of the disc tests: synthetic exams and the real tools that check the images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from media_samples import standard_series, write_image

TOOLS = ("dciodvfy", "dcentvfy", "dcdirdmp", "isoinfo", "xorriso", "osirrox")


@pytest.fixture
def dicom_files(tmp_path: Path) -> list[Path]:
    """Twenty synthetic files in a source folder with arbitrary names (as intake stores them)."""
    folder = tmp_path / "source"
    folder.mkdir()
    paths = []
    for s in standard_series():
        for i in range(1, s.count + 1):
            paths.append(write_image(folder / f"{s.series_uid}-{i}.dcm", s, i))
    return paths


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """The real peers. Missing one is a failure, never a skip: scripts/test installs them."""
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(
            f"missing test peers {', '.join(missing)}: install the Debian packages dicom3tools, "
            "genisoimage and xorriso (scripts/test does)"
        )
    return {name: path for name, path in found.items() if path is not None}
