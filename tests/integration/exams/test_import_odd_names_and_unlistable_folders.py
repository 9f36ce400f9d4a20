"""`trialship import` of inputs with odd names: one stderr line each, nothing crashes; a folder
that cannot be listed is quarantined, never passed over; a zip inside a zip says to unzip it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.exams.exam_samples import exam_instance, registered_trial_cli, write
from tests.unit.intake.odd_inputs import NOT_UTF8, trialship_as_a_user, unlistable, zip_bytes

FORGED = "evil.txt\nquarantined: forged.dcm: forged reason"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    return registered_trial_cli(tmp_path / "instance")


def test_odd_names_are_quarantined_on_one_line_each(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    src = tmp_path / "in"
    write(exam_instance(1), src / f"{NOT_UTF8}.dcm")
    (src / f"{NOT_UTF8}.txt").write_text("not DICOM")
    (src / FORGED).write_text("not DICOM")
    scan = write(exam_instance(2), tmp_path / "scan.dcm").read_bytes()
    inner = zip_bytes({"x.dcm": b"x"})
    forged = "s/scan\nquarantined: forged2.dcm: forged\x1b[2J.dcm"
    (src / "exam.zip").write_bytes(zip_bytes({forged: scan, "s/more.zip": inner}))
    result = cli("import", str(src), "--trial", "ACM-301")
    assert result.exit_code == 3, result.output
    not_dicom = "not DICOM (no DICM prefix and no recognisable data set)"
    assert sorted(result.stderr.splitlines()) == [
        f"quarantined: {src}/bad\\xff\\xfename.txt: {not_dicom}",
        f"quarantined: {src}/evil.txt\\nquarantined: forged.dcm: forged reason: {not_dicom}",
        f"quarantined: {src}/exam.zip!s/more.zip: a zip inside a zip is not read: unzip it first",
    ]
    assert "5 file(s): 2 imported" in result.stdout and "3 quarantined" in result.stdout


def test_a_folder_that_cannot_be_listed_is_quarantined_and_the_import_exits_3(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    src = tmp_path / "in"
    write(exam_instance(1), src / "good.dcm")
    write(exam_instance(2), src / "locked" / "hidden.dcm")
    with unlistable(src / "locked"):
        run = trialship_as_a_user(
            *("--data", str(tmp_path / "instance"), "import", str(src), "--trial", "ACM-301"),
            cwd=tmp_path,
        )
    assert run.returncode == 3, run.stderr
    assert run.stderr.splitlines() == [f"quarantined: {src}/locked: cannot list: Permission denied"]
    assert "2 file(s): 1 imported" in run.stdout and "1 quarantined" in run.stdout
