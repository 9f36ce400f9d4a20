"""Fixtures of the standalone disc build: a synthetic trial folder, the CLI, the real tools."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from build_samples import write_trial
from click.testing import CliRunner, Result

import trialship.cli.media  # noqa: F401  (registers `media` and `disc` on main)
from trialship.cli import main

TOOLS = ("xorriso", "osirrox", "isoinfo", "dciodvfy", "pdftotext")

Run = Callable[..., Result]


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """The real peers. Missing one is a failure, never a skip: scripts/test installs them."""
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(
            f"missing test peers {', '.join(missing)}: install the Debian packages xorriso, "
            "genisoimage, dicom3tools and poppler-utils (scripts/test does)"
        )
    return {name: path for name, path in found.items() if path is not None}


@pytest.fixture
def trial_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    write_trial(folder)
    return folder


@pytest.fixture
def run(tmp_path: Path) -> Run:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--data", str(tmp_path / "instance"), *args])

    return invoke
