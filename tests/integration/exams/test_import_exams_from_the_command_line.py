"""`trialship import` and the `exam` commands as an office runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.exams.exam_samples import (
    PHI,
    exam_instance,
    registered_trial_cli,
    write,
    write_exam,
)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    run = registered_trial_cli(tmp_path / "instance")
    return run


def test_import_of_a_folder_exits_0_and_lists_the_exam(cli, tmp_path: Path) -> None:
    write_exam(tmp_path / "in", 2)
    result = cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    assert result.exit_code == 0, result.output
    assert "2 imported" in result.output
    listing = cli("exam", "list", "--trial", "ACM-301")
    assert "SUBJ-001" in listing.output and "BL" in listing.output
    again = cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    assert again.exit_code == 0 and "2 already imported" in again.output


def test_some_quarantined_files_exit_3_with_one_line_each(cli, tmp_path: Path) -> None:
    write(exam_instance(1), tmp_path / "in" / "ok.dcm")
    write(exam_instance(2, patient_id="NOBODY"), tmp_path / "in" / "stranger.dcm")
    (tmp_path / "in" / "readme.txt").write_text("hello")
    result = cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    assert result.exit_code == 3, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("quarantined:")]
    assert len(problems) == 2
    assert "1 imported" in result.stdout


def test_the_key_is_printed_as_csv_for_the_command_line(cli, tmp_path: Path) -> None:
    write_exam(tmp_path / "in", 1)
    cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    result = cli("exam", "key", "--trial", "ACM-301", "--csv")
    assert result.exit_code == 0
    assert result.output.startswith("subject_id,exam,timepoint_id,kind,original,replacement")
    assert f"SUBJ-001,1,BL,patient_id,{PHI['patient_id']},SUBJ-001" in result.output


def test_an_unknown_subject_is_a_clear_error(cli, tmp_path: Path) -> None:
    write_exam(tmp_path / "in", 1)
    result = cli("import", str(tmp_path / "in"), "--trial", "ACM-301", "--subject", "NOPE")
    assert result.exit_code == 1 and "no subject 'NOPE'" in result.output


def test_the_quarantine_is_listed_with_reasons_and_no_names(cli, tmp_path: Path) -> None:
    write(exam_instance(1, patient_id="NOBODY"), tmp_path / "in" / f"{PHI['patient_id']}.dcm")
    cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    listing = cli("exam", "quarantine", "--trial", "ACM-301")
    assert listing.exit_code == 0, listing.output
    assert "no subject of the trial has this patient ID" in listing.output
    assert PHI["patient_id"] not in listing.output


def test_a_time_point_is_confirmed_and_the_pixels_reviewed_from_the_command_line(
    cli, tmp_path: Path
) -> None:
    cli("timepoint", "add", "--trial", "ACM-301", "W12", "--day", "84")
    write_exam(tmp_path / "in", 1)
    cli("import", str(tmp_path / "in"), "--trial", "ACM-301")
    unknown = cli("exam", "timepoint", "--trial", "ACM-301", "1", "NOPE")
    assert unknown.exit_code == 1 and "NOPE" in unknown.output
    confirmed = cli("exam", "timepoint", "--trial", "ACM-301", "1", "W12")
    assert confirmed.exit_code == 0, confirmed.output
    assert "W12 confirmed" in confirmed.output
    listing = cli("exam", "list", "--trial", "ACM-301")
    assert "W12" in listing.output and "(unconfirmed)" not in listing.output
    reviewed = cli("exam", "reviewed", "--trial", "ACM-301", "1")
    assert reviewed.exit_code == 0 and "reviewed" in reviewed.output
