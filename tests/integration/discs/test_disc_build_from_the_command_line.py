"""`trialship disc build`, `disc list` and `disc burn --trial --disc` as an office runs them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.discs.disc_samples import real_tools
from tests.integration.exams.exam_samples import registered_trial_cli, write_exam


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    run = registered_trial_cli(tmp_path / "instance")
    write_exam(tmp_path / "in", 3)
    imported = run("import", str(tmp_path / "in"), "--trial", "ACM-301")
    assert imported.exit_code == 0, imported.output
    return run


def _disc_id(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("disc "))
    return line.split()[1]


def test_build_prints_the_discs_and_what_to_load_then_lists_them(cli, tmp_path: Path) -> None:
    tools = real_tools()
    built = cli("disc", "build", "--trial", "ACM-301", "--subject", "SUBJ-001", "--media", "cd74")
    assert built.exit_code == 0, built.output
    assert "Disc set 1: 1 exam(s)" in built.output
    assert "ACM_301_1_D001" in built.output and "Load 1 blank CD-R 74 min disc." in built.output
    image = next(Path(w) for w in built.output.split() if w.endswith(".iso"))
    assert image.is_file() and image.is_relative_to(tmp_path / "instance" / "discs")
    info = subprocess.run(
        [tools["isoinfo"], "-d", "-i", str(image)], capture_output=True, text=True, check=True
    )
    assert "Volume id: ACM_301_1_D001" in info.stdout
    listing = cli("disc", "list", "--trial", "ACM-301")
    assert (
        listing.exit_code == 0 and "ACM_301_1_D001" in listing.output and "ready" in listing.output
    )
    # Every exam is on a disc now: a second build has nothing to take (unless --all).
    again = cli("disc", "build", "--trial", "ACM-301")
    assert again.exit_code == 2 and "no de-identified exam" in again.output
    assert cli("disc", "build", "--trial", "ACM-301", "--all").exit_code == 0


def test_burn_by_disc_id_records_verified_and_failed_burns(cli, tmp_path: Path) -> None:
    real_tools()
    built = cli("disc", "build", "--trial", "ACM-301")
    assert built.exit_code == 0, built.output
    disc = _disc_id(built.output)
    device = f"stdio:{tmp_path / 'x.iso'}"
    burned = cli("disc", "burn", "--trial", "ACM-301", "--disc", disc, "--device", device)
    assert burned.exit_code == 0, burned.output
    assert "written and verified" in burned.output
    listing = cli("disc", "list", "--trial", "ACM-301")
    assert "verified" in listing.output and "cli:" in listing.output
    full = cli("disc", "burn", "--trial", "ACM-301", "--disc", disc, "--device", "stdio:/dev/full")
    assert full.exit_code == 1 and "not burned on stdio:/dev/full" in full.output
    assert "no (" in cli("disc", "list", "--trial", "ACM-301").output
    marked = cli("disc", "burn", "--trial", "ACM-301", "--disc", disc, "--mark-burned")
    assert marked.exit_code == 0 and "recorded as burned" in marked.output
    usage = cli("disc", "burn", "--trial", "ACM-301", "--disc", disc)
    assert usage.exit_code == 2


def test_a_failed_set_is_rebuilt_or_deleted_and_a_busy_drive_refuses_a_burn(
    cli, tmp_path: Path
) -> None:
    import sqlite3

    real_tools()
    data = tmp_path / "instance"
    with sqlite3.connect(data / "trialship.db") as db:
        (stored,) = db.execute("select path from instances order by id limit 1").fetchone()
    path = data / stored
    original = path.read_bytes()
    path.write_bytes(original + b"\0\0")
    failed = cli("disc", "build", "--trial", "ACM-301")
    assert failed.exit_code == 1 and "changed since it was imported" in failed.output
    assert "failed" in cli("disc", "list", "--trial", "ACM-301").output
    path.write_bytes(original)
    rebuilt = cli("disc", "rebuild", "--trial", "ACM-301", "--set", "1")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Disc set 1: 1 exam(s)" in rebuilt.output and "Load 1 blank" in rebuilt.output
    refused = cli("disc", "delete", "--trial", "ACM-301", "--set", "1")
    assert refused.exit_code == 1 and "only a failed set is deleted" in refused.output
    path.write_bytes(original + b"\0\0")
    assert cli("disc", "build", "--trial", "ACM-301", "--all").exit_code == 1
    deleted = cli("disc", "delete", "--trial", "ACM-301", "--set", "2")
    assert deleted.exit_code == 0 and "Disc set 2 deleted." in deleted.output
    assert "\n2 " not in cli("disc", "list", "--trial", "ACM-301").output
    # A burn queued elsewhere (the web, the API) holds the drive: the CLI is told it is busy.
    disc = _disc_id(rebuilt.output)
    device = f"stdio:{tmp_path / 'drive.iso'}"
    with sqlite3.connect(data / "trialship.db") as db:
        db.execute(
            "insert into jobs (kind, target, state, done, total, message, created_at) "
            "values ('disc_burn', ?, 'queued', 0, 1000, '', '2024-01-01 00:00:00')",
            (f"disc:999@{device}",),
        )
    busy = cli("disc", "burn", "--trial", "ACM-301", "--disc", disc, "--device", device)
    assert busy.exit_code == 1 and "drive busy" in busy.output
    assert not (tmp_path / "drive.iso").exists()
