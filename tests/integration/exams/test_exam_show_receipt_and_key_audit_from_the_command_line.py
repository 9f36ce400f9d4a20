"""`trialship exam show | receipt`, the key audited before it is printed, a mistyped source
path, and which file the quarantine refused: as an office runs them."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.exams.exam_samples import PHI, registered_trial_cli, write_exam


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    return registered_trial_cli(tmp_path / "instance")


@pytest.fixture
def imported(cli: Callable[..., Result], tmp_path: Path) -> Callable[..., Result]:
    write_exam(tmp_path / "in", 2)
    assert cli("import", str(tmp_path / "in"), "--trial", "ACM-301").exit_code == 0
    return cli


def _key_reads(cli: Callable[..., Result]) -> int:
    listing = cli("audit", "--trial", "ACM-301", "--action", "exam.key", "--limit", "10000")
    return sum(" exam.key_" in line for line in listing.output.splitlines())


@pytest.mark.parametrize("as_csv", [False, True], ids=["table", "csv"])
def test_the_key_read_is_audited_even_when_its_output_is_cut_short(
    imported: Callable[..., Result], tmp_path: Path, as_csv: bool
) -> None:
    before = _key_reads(imported)
    args = ["--data", str(tmp_path / "instance"), "exam", "key", "--trial", "ACM-301"]
    # Stdout closed before the command prints anything (as `| head -0` does).
    process = subprocess.Popen(
        [sys.executable, "-m", "trialship", *args, *(["--csv"] if as_csv else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.close()
    process.wait(timeout=120)
    assert _key_reads(imported) == before + 1


def test_a_source_path_that_does_not_exist_is_a_usage_error_and_records_nothing(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    typo = tmp_path / "no-such-folder"
    result = cli("import", str(typo), "--trial", "ACM-301")
    assert result.exit_code == 2, result.output
    assert str(typo) in result.output and "does not exist" in result.output
    assert cli("exam", "quarantine", "--trial", "ACM-301").output.strip() == "(none)"
    assert "exam.import" not in cli("audit", "--trial", "ACM-301").output


def test_exam_show_gives_the_exam_with_its_series_and_json_as_the_api(
    imported: Callable[..., Result],
) -> None:
    shown = imported("exam", "show", "--trial", "ACM-301", "1")
    assert shown.exit_code == 0, shown.output
    assert "subject: SUBJ-001" in shown.output and "time point: BL" in shown.output
    assert "state: deidentified" in shown.output and "receipt: yes" in shown.output
    assert "SERIES" in shown.output and PHI["patient_id"] not in shown.output
    as_json = imported("exam", "show", "--trial", "ACM-301", "1", "--json")
    info = json.loads(as_json.output)
    assert info["subject_id"] == "SUBJ-001" and info["file_count"] == 2
    assert [s["instances"] for s in info["series"]] == [2]
    assert info["created_at"].endswith("+00:00") and info["has_receipt"] is True
    missing = imported("exam", "show", "--trial", "ACM-301", "99")
    assert missing.exit_code == 1 and "no exam 99" in missing.output


def test_exam_receipt_is_written_and_verifies(
    imported: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "exam-1-receipt.json"
    written = imported("exam", "receipt", "--trial", "ACM-301", "1", "--out", str(out))
    assert written.exit_code == 0 and f"Receipt written to {out}" in written.output
    verified = imported("receipt", "verify", str(out))
    assert verified.exit_code == 0 and verified.output.startswith("OK:"), verified.output
    printed = imported("exam", "receipt", "--trial", "ACM-301", "1")
    assert json.loads(printed.output) == json.loads(out.read_text(encoding="utf-8"))


def test_the_quarantine_lists_which_file_by_its_sha256(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    refused = tmp_path / "in" / f"{PHI['patient_id']}.dcm"
    refused.parent.mkdir()
    refused.write_bytes(b"not dicom at all")
    cli("import", str(refused.parent), "--trial", "ACM-301")
    listing = cli("exam", "quarantine", "--trial", "ACM-301")
    assert hashlib.sha256(refused.read_bytes()).hexdigest()[:16] in listing.output
    assert PHI["patient_id"] not in listing.output


def test_the_quarantine_lists_where_each_file_was_among_the_inputs_never_its_name(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    (good,) = write_exam(inputs, 1)  # img001.dcm: item 1
    (inputs / "img002.dcm").write_bytes(b"not dicom at all")  # item 2
    with zipfile.ZipFile(inputs / "more.zip", "w") as archive:  # items 3 to 5
        archive.writestr(f"{PHI['name']}/", b"")  # (a folder: zip entry 1, not an item)
        archive.writestr(f"{PHI['name']}/img.dcm", good.read_bytes())
        archive.writestr(f"{PHI['name']}/notes.txt", b"not dicom either")  # read: entry 3
        archive.writestr(f"../{PHI['patient_id']}.dcm", b"")  # refused unread
    assert cli("import", str(inputs), "--trial", "ACM-301").exit_code == 3
    listing = cli("exam", "quarantine", "--trial", "ACM-301").output
    header, *rows = listing.splitlines()
    assert "WHERE" in header and len(rows) == 3
    assert [_where(row) for row in rows] == [
        "item 5, zip entry 4",
        "item 4, zip entry 3",
        "item 2",
    ], listing
    assert "Kowalczyk" not in listing and PHI["patient_id"] not in listing


def _where(row: str) -> str:
    found = re.search(r"item \d+(, zip entry \d+)?", row)
    return found.group(0) if found else ""
