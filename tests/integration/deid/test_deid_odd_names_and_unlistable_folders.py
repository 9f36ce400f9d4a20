"""Inputs with odd names end in a written report and one stderr line each; a folder that
cannot be listed is rejected, never passed over; a zip inside a zip says to unzip it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deid_samples import Cli, instance, write

from tests.unit.intake.odd_inputs import NOT_UTF8, trialship_as_a_user, unlistable, zip_bytes

FORGED = "evil.txt\nrejected: forged.dcm: forged reason"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _report(out: Path) -> dict[str, dict[str, str]]:
    report = json.loads((out / "deid-report.json").read_text(encoding="utf-8"))
    return {entry["input"]: entry for entry in report["inputs"]}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_odd_names_are_reported_escaped_and_each_rejection_is_one_line(
    cli: Cli, tmp_path: Path, jobs: str
) -> None:
    src = tmp_path / "src"
    write(instance(1), src / f"{NOT_UTF8}.dcm")
    (src / FORGED).write_text("not DICOM")
    scan = write(instance(2), tmp_path / "scan.dcm").read_bytes()
    inner = zip_bytes({"x.dcm": b"x"})
    forged = "s/scan\nrejected: forged2.dcm: forged\x1b[2J.dcm"
    (src / "exam.zip").write_bytes(zip_bytes({forged: scan, "s/more.zip": inner}))
    result = cli.deid(str(src), "--jobs", jobs, out=tmp_path / "out")
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines() == [
        f"rejected: {src}/evil.txt\\nrejected: forged.dcm: forged reason: not DICOM"
        " (no DICM prefix and no recognisable data set)",
        f"rejected: {src}/exam.zip!s/more.zip: a zip inside a zip is not read: unzip it first",
    ]
    report = _report(tmp_path / "out")
    assert report[f"{src}/bad\\xff\\xfename.dcm"]["status"] == "deidentified"
    entry = f"{src}/exam.zip!s/scan\\nrejected: forged2.dcm: forged\\x1b[2J.dcm"
    assert report[entry]["status"] == "deidentified"
    assert len(report) == 4


def test_a_folder_that_cannot_be_listed_is_rejected_and_the_run_exits_3(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write(instance(1), src / "good.dcm")
    write(instance(2), src / "locked" / "hidden.dcm")
    with unlistable(src / "locked"):
        run = trialship_as_a_user(
            *("--data", str(cli.data), "deid", str(src), "--out", str(tmp_path / "out")),
            *("--profile", str(cli.profile), "--subject", "ACM-0001", "--site", "S01"),
            *("--timepoint", "BL"),
            cwd=tmp_path,
        )
    assert run.returncode == 3, run.stderr
    assert run.stderr.splitlines() == [f"rejected: {src}/locked: cannot list: Permission denied"]
    report = _report(tmp_path / "out")
    assert report[f"{src}/locked"] == {
        "input": f"{src}/locked",
        "status": "rejected",
        "reason": "cannot list: Permission denied",
    }
    assert report[f"{src}/good.dcm"]["status"] == "deidentified"
