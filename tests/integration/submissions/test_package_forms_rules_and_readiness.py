"""Package forms (a zip per exam, a disc set's ISO images) to sshd; DICOMweb STOW-RS and
C-STORE with storage commitment to Orthanc; which exams may go (readiness); what rules do
(once, daily from their time, never from a locked trial)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from tests.integration.exams.exam_samples import SYSTEM
from tests.integration.submissions.submission_samples import (
    add_destination,
    add_rule,
    import_exam,
    run,
    sftp_destination,
    submit,
)
from tests.integration.transfer.peers import NetNamespace, Orthanc, Sshd
from trialship.app import Runtime
from trialship.errors import Conflict
from trialship.registry.delivery import Destination
from trialship.registry.discs import DiscSet
from trialship.registry.imaging import Instance, Series
from trialship.registry.models import Exam, Trial
from trialship.registry.submissions import RuleMode, SubmissionState
from trialship.services import automation, disc_sets


def _set_form(runtime: Runtime, dest_pk: int, form: str) -> None:
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_pk)
        assert dest is not None
        dest.package_form = form


def test_a_zip_per_exam_reaches_sshd(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    _set_form(runtime, dest_pk, "zip")
    done = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert done.state == SubmissionState.DONE, done.message
    folder = remote / "ACM-301" / "S01" / "SUBJ-001" / "BL" / f"CT_{exam_pk:06d}"
    (sent,) = folder.glob("*.zip")
    with zipfile.ZipFile(sent) as archive:
        names = sorted(archive.namelist())
        assert len(names) == 3 and all(n.endswith(".dcm") for n in names)
    assert (folder / "SHA256SUMS").read_text().split()[1] == sent.name


def test_a_disc_sets_images_reach_sshd(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    with runtime.db.unit_of_work() as session:
        exam = session.get(Exam, exam_pk)
        assert exam is not None
        disc_set = disc_sets.create_disc_set(
            session, SYSTEM, session.merge(trial), [exam], today=runtime.today()
        )
        session.commit()
        assert disc_set.job_id is not None
        disc_sets.run_build_job(session, disc_set.job_id, data_dir=runtime.settings.data_dir)
        set_id = disc_set.id
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    _set_form(runtime, dest_pk, "iso")
    with pytest.raises(Exception, match="takes ISO images: submit a disc set"):
        submit(runtime, trial, dest_pk, exam_pk)
    done = run(runtime, submit(runtime, trial, dest_pk, set_id, scope="disc_set"))
    assert done.state == SubmissionState.DONE, done.message
    (image,) = remote.rglob("*.iso")  # below the template's fixed folder: a set spans subjects
    assert image.parent.name == f"DISCSET_{set_id:05d}"
    with runtime.db.unit_of_work() as session:
        found = session.get(DiscSet, set_id)
        assert found is not None
        assert image.stat().st_size == found.discs[0].image_bytes


def test_dicomweb_and_c_store_with_commitment_to_orthanc(
    runtime: Runtime, trial: Trial, netns: NetNamespace, orthanc: Orthanc, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    stow = add_destination(
        runtime,
        trial,
        {
            "name": "web",
            "kind": "dicomweb",
            "base_url": f"http://127.0.0.1:{orthanc.http_port}/dicom-web",
        },
    )
    store = add_destination(
        runtime,
        trial,
        {
            "name": "pacs",
            "kind": "dicom",
            "host": "127.0.0.1",
            "port": orthanc.dicom_port,
            "called_aet": "ORTHANC",
            "calling_aet": "TRIALSHIP",
            "commitment": True,
            "commitment_port": orthanc.commitment_port,
        },
    )
    for dest_pk in (stow, store):
        done = run(runtime, submit(runtime, trial, dest_pk, exam_pk), netns)
        assert done.state == SubmissionState.DONE, done.message
    groups = done.receipt["payload"]["extra"]["groups"]  # type: ignore[index]
    assert groups[0]["commitment"]["committed"] == 3
    sent = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in (runtime.settings.data_dir / "exams").rglob("*.dcm")
    }
    assert sent <= orthanc.instance_uids()


def test_only_ready_exams_go(runtime: Runtime, trial: Trial, tmp_path: Path) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = add_destination(
        runtime, trial, {"name": "web", "kind": "dicomweb", "base_url": "http://127.0.0.1:9/x"}
    )

    def change(model: type[Exam] | type[Destination], pk: int, **fields: object) -> None:
        with runtime.db.unit_of_work() as session:
            row = session.get(model, pk)
            assert row is not None
            for name, value in fields.items():
                setattr(row, name, value)

    change(Exam, exam_pk, needs_pixel_review=True)
    with pytest.raises(Conflict, match="pixel review pending"):
        submit(runtime, trial, dest_pk, exam_pk)
    change(Exam, exam_pk, needs_pixel_review=False, timepoint_confirmed=False)
    with pytest.raises(Conflict, match="time point not confirmed"):
        submit(runtime, trial, dest_pk, "BL", scope="timepoint")
    change(Exam, exam_pk, timepoint_confirmed=True)
    change(Destination, dest_pk, enabled=False)
    with pytest.raises(Conflict, match="disabled"):
        submit(runtime, trial, dest_pk, "SUBJ-001", scope="subject")


def test_a_transient_failure_is_retried_when_due(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    dest_pk = add_destination(
        runtime, trial, {"name": "web", "kind": "dicomweb", "base_url": "http://127.0.0.1:9/x"}
    )
    pk = submit(runtime, trial, dest_pk, exam_pk)
    first = run(runtime, pk, retry_delays=(60,))
    assert first.state == SubmissionState.QUEUED and "retrying in 60 s" in first.message
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=2)
    second = run(runtime, pk, retry_delays=(60,), now=lambda: later)
    assert second.state == SubmissionState.FAILED and "gave up after 2 attempts" in second.message


def test_daily_rules_run_once_from_their_time_and_never_from_a_locked_trial(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    dest_pk = add_destination(
        runtime, trial, {"name": "web", "kind": "dicomweb", "base_url": "http://127.0.0.1:9/x"}
    )
    add_rule(runtime, trial, dest_pk, mode="daily", daily_at="18:00")
    import_exam(runtime, trial, tmp_path / "in")
    today = runtime.today()
    morning = dt.datetime.combine(today, dt.time(9, 0))
    evening = dt.datetime.combine(today, dt.time(18, 5))
    with runtime.db.unit_of_work() as session:
        assert automation.submit_ready(session, today, morning) == []
        assert len(automation.submit_ready(session, today, evening)) == 1
        assert automation.submit_ready(session, today, evening) == []  # once a day
    with runtime.db.unit_of_work() as session:
        rule = automation.list_rules(session, session.merge(trial))[0]
        rule.mode, rule.daily_at = RuleMode.ON_READY, ""
    import_exam(runtime, trial, tmp_path / "second", study="1.2.826.0.1.3680043.99.31.2")
    with runtime.db.unit_of_work() as session:
        session.merge(trial).irb_expiry = today - dt.timedelta(days=1)
        session.flush()
        assert automation.submit_ready(session, today, evening) == []  # read-only trial
        session.merge(trial).irb_expiry = today + dt.timedelta(days=30)
        assert len(automation.submit_ready(session, today, evening)) == 1


def _stored(runtime: Runtime, exam_pk: int) -> tuple[Path, Instance]:
    with runtime.db.unit_of_work() as session:
        row = session.scalars(
            select(Instance).join(Series).where(Series.exam_pk == exam_pk).order_by(Instance.id)
        ).first()
        assert row is not None
        session.expunge(row)
        return runtime.settings.data_dir / row.path, row


def test_a_changed_file_or_one_not_marked_de_identified_never_leaves(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    path, row = _stored(runtime, exam_pk)
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, other content
    changed = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert changed.state == SubmissionState.FAILED and "its SHA-256 differs" in changed.message
    # Even a file recorded as it is (hash and size) goes only with PatientIdentityRemoved YES.
    ds = dcmread(io.BytesIO(original))
    ds.PatientIdentityRemoved = "NO"
    ds.save_as(path, enforce_file_format=True)
    with runtime.db.unit_of_work() as session:
        found = session.get(Instance, row.id)
        assert found is not None
        found.output_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        found.size = path.stat().st_size
    refused = run(runtime, submit(runtime, trial, dest_pk, exam_pk))
    assert refused.state == SubmissionState.FAILED and refused.attempts == 1
    assert "not marked de-identified" in refused.message
    assert "PatientIdentityRemoved is 'NO'" in refused.message
    assert not list(remote.rglob("*.dcm"))
