"""An import killed (SIGKILL) leaves its scratch folder (a zip entry extracted there): the next
import of the trial, or the daily sweep, removes it; a running import's folder stays, however
old, and a folder whose owner cannot be told stays until it is old."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.exams.exam_samples import registered_trial_cli, write_exam
from trialship.services import housekeeping, import_scratch

MONTH = 30 * 24 * 3600.0
# A process that makes its scratch folder as an import does, says so, and runs on.
HOLDER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from trialship.services.import_scratch import owned_name\n"
    "folder = Path(sys.argv[1]) / owned_name()\n"
    "folder.mkdir(parents=True)\n"
    "print(folder, flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    return registered_trial_cli(tmp_path / "instance")


@pytest.fixture
def running_holder(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    started: list[subprocess.Popen[str]] = []

    def start(parent: Path) -> Path:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(parent)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None
        return Path(process.stdout.readline().strip())

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)


def _zip(folder: Path, count: int) -> Path:
    write_exam(folder / "files", count)
    archive = folder / "exam.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted((folder / "files").iterdir()):
            out.write(path, f"study/{path.name}")
    return archive


def _killed_import_scratch(data: Path, archive: Path, scratch_root: Path) -> Path:
    """Start `trialship import archive`, SIGKILL it once it holds its scratch folder, and
    return that folder (left behind)."""
    trialship = Path(sys.executable).with_name("trialship")
    process = subprocess.Popen(
        [str(trialship), "--data", str(data), "import", str(archive), "--trial", "ACM-301"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (scratch_root.is_dir() and any(scratch_root.iterdir())):
            assert process.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    (left,) = scratch_root.iterdir()
    assert f"-{process.pid}-" in left.name
    return left


def test_the_next_import_removes_the_scratch_of_a_killed_import_and_keeps_a_running_ones(
    cli: Callable[..., Result], tmp_path: Path, running_holder: Callable[[Path], Path]
) -> None:
    data = tmp_path / "instance"
    scratch_root = data / "originals" / "1" / ".import-scratch"
    left = _killed_import_scratch(data, _zip(tmp_path / "big", 400), scratch_root)
    running = running_holder(scratch_root)
    os.utime(running, (time.time() - MONTH, time.time() - MONTH))  # (running: age is no matter)
    write_exam(tmp_path / "next", 1)
    assert cli("import", str(tmp_path / "next"), "--trial", "ACM-301").exit_code == 0
    assert not left.exists()
    assert running.is_dir()


def test_a_folder_whose_owner_cannot_be_told_is_removed_only_when_old(
    tmp_path: Path, running_holder: Callable[[Path], Path]
) -> None:
    data = tmp_path / "instance"
    trials = [data / "originals" / str(n) / ".import-scratch" for n in (1, 2)]
    # Named as before owners were named, and named by another host sharing the data folder.
    old_unnamed, new_unnamed = trials[0] / uuid.uuid4().hex, trials[0] / uuid.uuid4().hex
    elsewhere = trials[1] / f"0123456789ab-0-{os.getpid()}-1-{uuid.uuid4().hex}"
    for folder in (old_unnamed, new_unnamed, elsewhere):
        (folder / "x.zipentry").parent.mkdir(parents=True)
        (folder / "x.zipentry").write_bytes(b"an extracted entry")
    now = time.time()
    for path in (old_unnamed, old_unnamed / "x.zipentry", elsewhere, elsewhere / "x.zipentry"):
        os.utime(path, (now - import_scratch.STALE_AFTER - 60,) * 2)
    dead = trials[1] / _dead_owner_name()
    # This process's PID, with another start: a process that had the PID before this one.
    host, boot, pid, _, token = import_scratch.owned_name().split("-")
    reused = trials[1] / f"{host}-{boot}-{pid}-1-{token}"
    for folder in (dead, reused):
        folder.mkdir()
    running = running_holder(trials[1])
    assert housekeeping.remove_stale_import_scratch(data, now=now) == 4
    assert not old_unnamed.exists() and not elsewhere.exists()
    assert not dead.exists() and not reused.exists()
    assert new_unnamed.is_dir() and running.is_dir()
    assert housekeeping.remove_stale_import_scratch(tmp_path / "empty", now=now) == 0


def _dead_owner_name() -> str:
    """A scratch folder name of this host and boot whose process has exited."""
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from trialship.services.import_scratch import owned_name; print(owned_name())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return process.stdout.strip()


def test_the_daily_sweep_removes_half_written_files_only_when_old(tmp_path: Path) -> None:
    data = tmp_path / "instance"
    now = time.time()
    old_original = data / "originals" / "1" / f".{uuid.uuid4().hex}.part"
    old_output = data / "exams" / "1" / "7" / f".I00001.dcm.{uuid.uuid4().hex}.part"
    fresh_output = data / "exams" / "1" / "7" / f".I00002.dcm.{uuid.uuid4().hex}.part"
    kept = [data / "exams" / "1" / "7" / "I00003.dcm", data / "originals" / "1" / "ab12.dcm"]
    for path in (old_original, old_output, fresh_output, *kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    for path in (old_original, old_output, *kept):
        os.utime(path, (now - import_scratch.STALE_AFTER - 60,) * 2)
    assert housekeeping.remove_stale_import_scratch(data, now=now) == 2
    assert not old_original.exists() and not old_output.exists()
    assert fresh_output.exists() and all(path.exists() for path in kept)
