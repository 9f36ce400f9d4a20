"""`trialship deid --jobs 2` stopped by SIGTERM or SIGKILL: its workers stop with it, nothing
keeps writing into the output folder, and SIGTERM says what is left there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deid_samples import PROFILE, instance, write

FILES = 600


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    for number in range(1, FILES + 1):
        write(instance(number, pixels=b"\x10\x00" * 32768), folder / f"{number:04d}.dcm")
    return folder


def _start(corpus: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    (tmp_path / "profile.toml").write_text(PROFILE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "trialship", "--data", str(tmp_path / "instance"), "deid"]
    command += [str(corpus), "--out", str(out), "--profile", str(tmp_path / "profile.toml")]
    command += ["--subject", "ACM-0001", "--site", "S01", "--timepoint", "BL", "--jobs", "2"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(out.rglob("I*.dcm")):  # the workers are running: some output is in place
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process, out


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_sigterm_stops_the_workers_and_says_the_folder_is_incomplete(
    corpus: Path, tmp_path: Path
) -> None:
    process, out = _start(corpus, tmp_path)
    workers = _children(process.pid)
    assert workers
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert f"stopped: {out} is incomplete and has no report" in stderr
    assert _gone(workers)
    assert not (out / ".trialship-partial").exists()
    assert not (out / "deid-report.json").exists()
    assert len(list(out.rglob("*.dcm"))) < FILES


def test_sigkill_of_the_run_ends_its_workers(corpus: Path, tmp_path: Path) -> None:
    process, out = _start(corpus, tmp_path)
    workers = _children(process.pid)
    assert workers
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert _gone(workers)
    written = len(list(out.rglob("*")))
    time.sleep(0.5)
    assert len(list(out.rglob("*"))) == written  # nothing writes there any more
