"""`trialship deid` keeps pydicom's test files as conformant as they came: dciodvfy reports no
error on an output that it does not report on its input (PS3.15 E.1.1: combined codes resolve by
the attribute's Type in the IOD; Overlay Data goes with its overlay group)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from deid_samples import Cli
from pydicom.data import get_testdata_file

FILES = (
    "rtstruct.dcm",
    "liver_1frame.dcm",
    "reportsi.dcm",
    "test-SR.dcm",
    "examples_overlay.dcm",
    "SC_rgb_gdcm_KY.dcm",  # no General Equipment module: the site as InstitutionName makes one
)
_NUMBER = re.compile(r"(?<![\w.])\d+(\.\d+)*(?![\w.])")
"""UIDs and numeric values (a tag's hex digits are part of a word: they stay)."""
_QUOTED = re.compile(r'"[^"]*"')


@pytest.fixture(scope="module")
def dciodvfy() -> str:
    """The real validator. Missing is a failure, never a skip: scripts/test installs it."""
    found = shutil.which("dciodvfy")
    if found is None:
        pytest.fail("missing test peer dciodvfy: install the Debian package dicom3tools")
    return found


def errors(dciodvfy: str, path: Path) -> set[str]:
    """The attribute/module part of each "Error -" line, UIDs, numbers and quoted values left out
    (they change on purpose)."""
    run = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
    found = set()
    for line in (run.stdout + run.stderr).splitlines():
        if line.startswith("Error - "):
            message = _QUOTED.sub('"…"', _NUMBER.sub("<n>", line.removeprefix("Error - ")))
            found.add(" ".join(message.split()))
    return found


def _inputs(folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        source = get_testdata_file(name)  # a local file: no download
        assert source is not None, name
        shutil.copy(source, folder / name)
    # Its patient is named "Last Name^First Name", and "Recording Observer's Name" (a local
    # code's meaning) holds a part of it: the leak check rejects it, as it must.
    report = pydicom.dcmread(folder / "reportsi.dcm")
    report.PatientName = "Doe^Jane"
    report.save_as(folder / "reportsi.dcm")
    return folder


@pytest.mark.parametrize("options", ["as-in-the-samples", "basic-profile-only"])
def test_deidentified_test_files_get_no_new_dciodvfy_errors(
    dciodvfy: str, tmp_path: Path, options: str
) -> None:
    cli = Cli(tmp_path)
    if options == "basic-profile-only":
        text = cli.profile.read_text()
        cli.profile.write_text(re.sub(r"(?m)^options = .*$", "options = []", text))
    src = _inputs(tmp_path / "src")
    out = tmp_path / "out"
    result = cli.deid(str(src), out=out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "deid-report.json").read_text())
    outputs = {Path(entry["input"]).name: entry.get("output") for entry in report["inputs"]}
    assert sorted(outputs) == sorted(FILES)

    new = set()
    for name, output in sorted(outputs.items()):
        assert output, f"{name} was not de-identified: {report}"
        before = errors(dciodvfy, src / name)
        after = errors(dciodvfy, out / output)
        new |= {(name, message) for message in after - before}
    assert new == set()
