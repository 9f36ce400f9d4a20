"""`trialship deid --jobs 2` stopped by SIGTERM or SIGKILL: its workers stop with it, nothing
keeps writing into the output folder, SIGTERM says what is left there, and the same command
finishes the run as one run would have."""

from __future__ import annotations

import json
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
    assert f"stopped: {out} is incomplete (no report or receipts yet): run the same" in stderr
    assert _gone(workers)
    assert not list(out.glob(".trialship-partial-*"))
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


def _finish(corpus: Path, tmp_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "trialship", "--data", str(tmp_path / "instance"), "deid"]
    command += [str(corpus), "--out", str(out), "--profile", str(tmp_path / "profile.toml")]
    command += ["--subject", "ACM-0001", "--site", "S01", "--timepoint", "BL", "--jobs", "2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_the_same_command_finishes_a_stopped_run_as_one_run_would(
    corpus: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    process, out = _start(corpus, tmp_path)
    os.kill(process.pid, stop)
    process.communicate(timeout=60)
    stopped_with = len(list(out.rglob("*.dcm")))
    finished = _finish(corpus, tmp_path, out)
    assert finished.returncode == 0, finished.stderr
    whole = _finish(corpus, tmp_path, tmp_path / "whole")  # one run, never stopped
    assert whole.returncode == 0, whole.stderr
    tree = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.dcm")}
    reference = {
        p.relative_to(tmp_path / "whole").as_posix(): p.read_bytes()
        for p in (tmp_path / "whole").rglob("*.dcm")
    }
    assert 0 < stopped_with < FILES == len(tree)
    assert tree == reference  # the same names and bytes
    report = json.loads((out / "deid-report.json").read_text())
    assert report["summary"] == {"inputs": FILES, "deidentified": FILES}
    assert len({entry["input"] for entry in report["inputs"]}) == FILES
    receipt = json.loads((out / "receipts" / "ACM-0001_BL_1.json").read_text())
    assert len(receipt["payload"]["outputs"]) == FILES
    assert not (out / ".trialship-run.jsonl").exists()
    again = _finish(corpus, tmp_path, out)  # finished: nothing more to do, nothing overwritten
    assert again.returncode == 2 and "already holds" in again.stderr
