"""Submissions from the registry to real peers: an imported exam to OpenSSH sshd and to dcmtk
storescp; a killed run resumed without re-sending; permanent and transient failures; cancel;
automation (an imported exam reaches sshd with no human step)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.destinations.conftest import authorize
from tests.integration.exams.exam_samples import FORBIDDEN, SYSTEM
from tests.integration.submissions.submission_samples import (
    add_destination,
    add_rule,
    import_exam,
    load,
    run,
    sftp_destination,
    submit,
)
from tests.integration.transfer.peers import NetNamespace, Sshd, Storescp
from trialship.app import Runtime
from trialship.deid.receipt import verify_receipt
from trialship.jobs.tasks import sweep_submissions
from trialship.registry.delivery import Destination
from trialship.registry.models import JobState, Trial
from trialship.registry.submissions import FileState, Submission, SubmissionState
from trialship.services import destinations, submissions
from trialship.services.submission_run import resume_stalled
from trialship.signing import load_or_create_signing_key
from trialship.transfer import send as real_send


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_exam_reaches_sshd_with_manifest_marker_and_a_signed_receipt(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    done = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert done.state == SubmissionState.DONE, done.message
    folder = remote / "ACM-301" / "S01" / "SUBJ-001" / "BL" / f"CT_{exam_pk:06d}"
    sent = sorted(p for p in folder.rglob("*.dcm"))
    assert len(sent) == 3
    stored = runtime.settings.data_dir / "exams" / str(trial.id) / str(exam_pk)
    for path in sent:
        assert _sha(path) == _sha(stored / path.relative_to(folder))
        blob = path.read_bytes()
        assert not any(word.encode() in blob for word in FORBIDDEN)
    assert (folder / "COMPLETE").exists() and len(
        (folder / "SHA256SUMS").read_text().splitlines()
    ) == 3
    loaded = load(runtime, done.id)
    assert all(f.state == FileState.SENT for f in loaded.files)
    assert loaded.files_done == 3 and loaded.bytes_done == loaded.bytes_total > 0
    assert loaded.job is not None and loaded.job.state == JobState.DONE
    receipt = loaded.receipt
    assert receipt is not None
    assert verify_receipt(
        receipt, load_or_create_signing_key(runtime.settings.data_dir).public_key()
    )
    outputs = receipt["payload"]["outputs"]
    assert len(outputs) == 3 and all(key.startswith(str(folder)) for key in outputs)


def test_a_killed_run_resumes_without_sending_confirmed_files_again(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = sftp_destination(runtime, trial, sshd, tmp_path / "remote")
    pk = submit(runtime, trial, dest_pk, exam_pk)

    def dies_after_one_file(
        package: Any, target: Any, journal: Any, progress: Any, **kw: Any
    ) -> Any:
        class Dying:
            def confirmed(self, remote: str, sha256: str) -> Any:
                return journal.confirmed(remote, sha256)

            def confirm(self, *args: Any, **detail: Any) -> None:
                journal.confirm(*args, **detail)
                raise KeyboardInterrupt  # the process is gone: no handler runs

        return real_send(package, target, Dying(), progress, **kw)

    with pytest.raises(KeyboardInterrupt):
        run(runtime, pk, send=dies_after_one_file)
    killed = load(runtime, pk)
    assert killed.state == SubmissionState.RUNNING  # as a killed worker leaves it
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=5)
    with runtime.db.unit_of_work() as session:
        assert resume_stalled(session, later) == [pk]
    done = run(runtime, pk, now=lambda: later)
    assert done.state == SubmissionState.DONE, done.message
    outcomes = done.receipt["payload"]["extra"]["outcomes"]  # type: ignore[index]
    assert sorted(o["resumed"] for o in outcomes.values()) == [False, False, True]


def test_wrong_key_fails_at_once_and_a_down_server_is_retried_later(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = sftp_destination(runtime, trial, sshd, tmp_path / "remote")
    authorize(sshd, sshd.client_key.with_suffix(".pub").read_text())  # ours is no longer let in
    failed = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert failed.state == SubmissionState.FAILED and failed.attempts == 1
    assert "authentication failed" in failed.message
    sshd.stop()
    waiting = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert waiting.state == SubmissionState.QUEUED and "retrying in 30 s" in waiting.message
    assert waiting.not_before is not None
    with runtime.db.unit_of_work() as session:
        assert waiting.id not in resume_stalled(
            session, dt.datetime.now(dt.UTC).replace(tzinfo=None)
        )


def test_cancel_a_queued_submission_and_retry_it(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = sftp_destination(runtime, trial, sshd, tmp_path / "remote")
    pk = submit(runtime, trial, dest_pk, exam_pk)
    with runtime.db.unit_of_work() as session:
        found = session.get(Submission, pk)
        assert found is not None
        submissions.cancel_submission(session, SYSTEM, found, runtime.today())
    assert load(runtime, pk).state == SubmissionState.CANCELLED
    with runtime.db.unit_of_work() as session:
        found = session.get(Submission, pk)
        assert found is not None
        submissions.retry_submission(session, SYSTEM, found, runtime.today())
    assert run(runtime, pk).state == SubmissionState.DONE


def test_a_rule_sends_an_imported_exam_with_no_human_step(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    add_rule(runtime, trial, dest_pk)
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    assert sweep_submissions(runtime) == 1  # the minute task, and the end of an import job
    folder = remote / "ACM-301" / "S01" / "SUBJ-001" / "BL" / f"CT_{exam_pk:06d}"
    assert len(list(folder.rglob("*.dcm"))) == 3 and (folder / "COMPLETE").exists()
    assert sweep_submissions(runtime) == 0  # sent once


def test_an_exam_to_storescp_records_each_instance_status(
    runtime: Runtime, trial: Trial, netns: NetNamespace, storescp: Storescp, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = add_destination(
        runtime,
        trial,
        {"name": "pacs", "kind": "dicom", "host": "127.0.0.1", "port": storescp.port,
         "called_aet": storescp.aet},
    )  # fmt: skip
    done = run(runtime, submit(runtime, trial, dest_pk, exam_pk), netns)
    assert done.state == SubmissionState.DONE, done.message
    assert len(list(storescp.received.rglob("*"))) >= 3
    loaded = load(runtime, done.id)
    assert {f.detail.get("status") for f in loaded.files} == {"0x0000"}


def test_a_tls_destination_is_tested_and_receives_an_exam_over_tls(
    runtime: Runtime,
    trial: Trial,
    netns: NetNamespace,
    tls_storescp: tuple[Storescp, Path],
    tmp_path: Path,
) -> None:
    server, cert = tls_storescp
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = add_destination(
        runtime,
        trial,
        {"name": "pacs-tls", "kind": "dicom", "host": "127.0.0.1", "port": server.port,
         "called_aet": server.aet, "tls": True, "tls_ca_pem": cert.read_text()},
    )  # fmt: skip
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_pk)
        assert dest is not None
        result = netns.call(
            destinations.check_connection, session, SYSTEM, runtime.vault, dest, runtime.today()
        )
        assert result.ok, result.message
    done = run(runtime, submit(runtime, trial, dest_pk, exam_pk), netns)
    assert done.state == SubmissionState.DONE, done.message
    assert len(list(server.received.rglob("*.dcm"))) == 3
