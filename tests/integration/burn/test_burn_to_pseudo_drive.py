"""Burning with the real xorriso onto libburn's `stdio:` pseudo drive, and its failures."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from trialship.media.burn import BurnError, burn_iso, xorriso_available


@pytest.fixture(scope="module")
def xorriso() -> str:
    path = shutil.which("xorriso")
    if path is None or not xorriso_available():
        pytest.fail("xorriso is missing: apt-get install xorriso (scripts/test installs it)")
    return path


@pytest.fixture(scope="module")
def small_iso(xorriso: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ISO 9660 image of two small files, written by xorriso itself."""
    folder = tmp_path_factory.mktemp("iso")
    source = folder / "source"
    source.mkdir()
    (source / "README.TXT").write_text("De-identified test disc\n")
    (source / "DATA.BIN").write_bytes(bytes(range(256)) * 400)
    image = folder / "small.iso"
    subprocess.run(
        [
            xorriso,
            "-outdev",
            f"stdio:{image}",
            "-volid",
            "TRIALSHIP_T",
            "-map",
            str(source),
            "/",
            "-commit",
        ],
        capture_output=True,
        check=True,
    )
    return image


def test_burning_to_a_pseudo_drive_is_verified(small_iso: Path, tmp_path: Path) -> None:
    stages: list[str] = []
    target = tmp_path / "fake.iso"
    result = burn_iso(small_iso, f"stdio:{target}", progress=lambda s, f: stages.append(s))
    assert result.ok and result.verified
    assert result.readback_sha256 == result.image_sha256
    assert result.device == f"stdio:{target}"
    assert result.message == "written and verified"
    # The pseudo drive pads the track: only the image-sized prefix is compared.
    assert target.stat().st_size >= small_iso.stat().st_size
    assert stages[0] == "writing" and stages[-1] == "done" and "reading back" in stages


def test_a_full_device_fails_with_xorrisos_message(small_iso: Path) -> None:
    with pytest.raises(BurnError) as caught:
        burn_iso(small_iso, "stdio:/dev/full")
    assert "No space left on device" in caught.value.message
    assert "SORRY" in caught.value.message
    assert caught.value.returncode not in (None, 0)
    assert caught.value.device == "stdio:/dev/full"


def test_a_missing_directory_fails_with_xorrisos_message(small_iso: Path, tmp_path: Path) -> None:
    with pytest.raises(BurnError, match="Neither stdio-path nor its directory exist"):
        burn_iso(small_iso, f"stdio:{tmp_path / 'no-such-dir' / 'fake.iso'}")


def test_a_missing_image_is_refused_before_xorriso_runs(tmp_path: Path) -> None:
    with pytest.raises(BurnError, match="image not found"):
        burn_iso(tmp_path / "absent.iso", f"stdio:{tmp_path / 'fake.iso'}")


def test_a_disc_that_reads_back_differently_is_not_ok(small_iso: Path, tmp_path: Path) -> None:
    target = tmp_path / "fake.iso"

    def burn_then_damage(
        args: Sequence[str], *, capture_output: bool, text: bool, check: bool
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, capture_output=capture_output, text=text, check=check)
        if "-as" in args:  # after the write, flip a byte inside the image's extent
            with target.open("r+b") as disc:
                disc.seek(40_000)
                byte = disc.read(1)
                disc.seek(40_000)
                disc.write(bytes([byte[0] ^ 0xFF]))
        return done

    result = burn_iso(small_iso, f"stdio:{target}", run=burn_then_damage)
    assert not result.ok and not result.verified
    assert result.readback_sha256 not in (None, result.image_sha256)
    assert "differs" in result.message


def test_without_verification_nothing_is_read_back(small_iso: Path, tmp_path: Path) -> None:
    result = burn_iso(small_iso, f"stdio:{tmp_path / 'fake.iso'}", verify=False)
    assert result.ok and not result.verified and result.readback_sha256 is None
