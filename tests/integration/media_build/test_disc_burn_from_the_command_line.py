"""`trialship disc burn` with the real xorriso on libburn's `stdio:` pseudo drive."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Run


@pytest.fixture
def built_iso(run: Run, trial_folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    result = run("media", "build", str(trial_folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out / "DISC001.iso"


def test_burning_to_a_pseudo_drive_is_verified(
    run: Run, built_iso: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    target = tmp_path / "fake.iso"
    result = run("disc", "burn", str(built_iso), "--device", f"stdio:{target}")
    assert result.exit_code == 0, result.output
    assert "written and verified" in result.output
    size = built_iso.stat().st_size
    assert target.read_bytes()[:size] == built_iso.read_bytes()


def test_burning_without_verification_says_so(
    run: Run, built_iso: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    target = tmp_path / "fake.iso"
    result = run("disc", "burn", str(built_iso), "--device", f"stdio:{target}", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "written, not verified" in result.output


def test_a_full_device_fails_with_xorrisos_message_on_one_line(
    run: Run, built_iso: Path, tools: dict[str, str]
) -> None:
    result = run("disc", "burn", str(built_iso), "--device", "stdio:/dev/full")
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and "No space left on device" in line
