"""The real job worker (`trialship worker`, huey on SQLite) in its own process: an exam imported
on the command line reaches sshd with no human step; a worker killed with SIGKILL mid-send is
replaced and the submission resumes without sending a confirmed file twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from tests.integration.exams.exam_samples import write_exam
from tests.integration.submissions.submission_samples import add_rule, sftp_destination
from tests.integration.transfer.peers import Sshd
from trialship.app import Runtime, bootstrap
from trialship.cli import main
from trialship.registry.delivery import Destination
from trialship.registry.models import Trial
from trialship.registry.submissions import Submission, SubmissionState

Worker = Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def queued_runtime(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The same data folder with its real (SQLite) queue, as a worker process sees it."""
    monkeypatch.delenv("TRIALSHIP_QUEUE_URL")
    return bootstrap({"data_dir": runtime.settings.data_dir})


@pytest.fixture
def start_worker(queued_runtime: Runtime, tmp_path: Path) -> Iterator[Worker]:
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALSHIP_")}
    env["TRIALSHIP_DATA"] = str(queued_runtime.settings.data_dir)

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        code = "from trialship.cli import main; main(['worker', '--workers', '1'])"
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _state(runtime: Runtime, pk: int) -> Submission:
    with runtime.db.unit_of_work() as session:
        found = session.get(Submission, pk)
        assert found is not None
        session.expunge(found)
        return found


def _wait(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _cli(runtime: Runtime, *args: str) -> str:
    result = CliRunner().invoke(main, ["--data", str(runtime.settings.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_imported_exam_reaches_sshd_with_no_human_step(
    queued_runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path, start_worker: Worker
) -> None:
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(queued_runtime, trial, sshd, remote)
    add_rule(queued_runtime, trial, dest_pk)
    start_worker()
    write_exam(tmp_path / "in", 3)
    out = _cli(
        queued_runtime,
        "import",
        str(tmp_path / "in"),
        "--trial",
        "ACM-301",
        "--subject",
        "SUBJ-001",
        "--timepoint",
        "BL",
    )
    assert "1 submission(s) queued by automation rules" in out
    folder = remote / "ACM-301" / "S01" / "SUBJ-001" / "BL"
    _wait(lambda: any(folder.rglob("COMPLETE")))
    assert len(list(folder.rglob("*.dcm"))) == 3
    _wait(lambda: _state(queued_runtime, 1).state == SubmissionState.DONE)


def test_a_worker_killed_mid_send_is_replaced_and_the_submission_resumes(
    queued_runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path, start_worker: Worker
) -> None:
    remote = tmp_path / "remote"
    sftp_destination(queued_runtime, trial, sshd, remote)
    _many_files(queued_runtime, tmp_path)
    first = start_worker()
    _cli(queued_runtime, *SUBMIT, "--queue")
    # The journal itself, not the half-second progress: what the destination confirmed.
    _wait(lambda: _confirmed(queued_runtime) >= 5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = _state(queued_runtime, 1)
    assert killed.state == SubmissionState.RUNNING and _arrived(remote) < MANY
    start_worker()  # finds the dead worker's submission at once and resumes it
    _wait(lambda: _state(queued_runtime, 1).state == SubmissionState.DONE)
    done = _state(queued_runtime, 1)
    assert done.files_done == MANY and done.attempts == 2
    outcomes = done.receipt["payload"]["extra"]["outcomes"]  # type: ignore[index]
    assert len(outcomes) == MANY
    assert sum(o["resumed"] for o in outcomes.values()) >= 5  # confirmed before the kill
    assert not list(remote.rglob("*.part"))


def test_a_running_submission_is_cancelled_and_retried_without_resending(
    queued_runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path, start_worker: Worker
) -> None:
    remote = tmp_path / "remote"
    sftp_destination(queued_runtime, trial, sshd, remote)
    _many_files(queued_runtime, tmp_path)
    start_worker()
    _cli(queued_runtime, *SUBMIT, "--queue")
    _wait(lambda: _arrived(remote) >= 5)
    job = _state(queued_runtime, 1).job_id
    assert "cancel requested" in _cli(queued_runtime, "jobs", "cancel", str(job))
    _wait(lambda: _state(queued_runtime, 1).state == SubmissionState.CANCELLED)
    stopped = _state(queued_runtime, 1)
    assert 5 <= stopped.files_done < MANY
    assert "queued again" in _cli(queued_runtime, "jobs", "retry", str(job))
    _wait(lambda: _state(queued_runtime, 1).state == SubmissionState.DONE)
    outcomes = _state(queued_runtime, 1).receipt["payload"]["extra"]["outcomes"]  # type: ignore[index]
    assert sum(o["resumed"] for o in outcomes.values()) >= stopped.files_done


MANY = 300  # files of ~40 kB, sent at the destination's limit of 2 MB/s: ~6 s
RATE_LIMIT_KBPS = 2000
SUBMIT = ("submit", "--trial", "ACM-301", "--destination", "sponsor", "--exam", "1")


def _many_files(runtime: Runtime, tmp_path: Path) -> None:
    """An exam of MANY files, and a bandwidth limit on the destination: a kill or a cancel
    lands mid-send however fast the machine is."""
    with runtime.db.unit_of_work() as session:
        session.execute(update(Destination).values(rate_limit_kbps=RATE_LIMIT_KBPS))
    write_exam(tmp_path / "in", MANY, pixels=b"\x20\x01" * 20_000)
    _cli(runtime, "import", str(tmp_path / "in"), "--trial", "ACM-301", "--subject", "SUBJ-001",
         "--timepoint", "BL")  # fmt: skip


def _confirmed(runtime: Runtime) -> int:
    """Files the journals of the submissions record as confirmed (a line each after the head)."""
    journals = (runtime.settings.data_dir / "submissions").rglob("*.journal")
    return sum(max(0, len(j.read_bytes().splitlines()) - 1) for j in journals)


def _arrived(remote: Path) -> int:
    return sum(1 for _ in remote.rglob("*.dcm"))
