"""Disc sets from the registry: choose, plan, build as a job, read back, burn and record."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.integration.discs.disc_samples import NOW, imported_trial, real_tools
from tests.integration.exams.exam_samples import FORBIDDEN, SYSTEM
from trialship.app import Runtime
from trialship.errors import Conflict, ValidationError
from trialship.registry.discs import Disc, DiscSet, DiscSetState, DiscState
from trialship.registry.imaging import Instance
from trialship.registry.models import AuditEvent, Exam, Job, JobState, Trial
from trialship.services import disc_burns, disc_sets
from trialship.services.media_build import read_manifest


@pytest.fixture
def trial(runtime: Runtime, tmp_path: Path) -> Trial:
    return imported_trial(runtime, tmp_path)


def build(runtime: Runtime, trial: Trial, **choice: object) -> int:
    """Create and run a set; returns its id."""
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exams = disc_sets.choose_exams(session, t, **choice)  # type: ignore[arg-type]
        disc_set = disc_sets.create_disc_set(session, SYSTEM, t, exams, today=runtime.today())
        session.commit()
        assert disc_set.job_id is not None
        disc_sets.run_build_job(session, disc_set.job_id, data_dir=runtime.settings.data_dir)
        return disc_set.id


def test_the_plan_of_all_exams_is_one_cd_and_writes_nothing(runtime: Runtime, trial: Trial) -> None:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exams = disc_sets.choose_exams(session, t)
        assert len(exams) == 3
        plan = disc_sets.plan_disc_set(
            session, SYSTEM, t, exams, media="auto", policy="pack", today=runtime.today()
        )
        assert plan.medium.is_cd and len(plan.discs) == 1
        assert sorted(plan.exam_ids) == sorted(e.id for e in exams)
        assert 0 < plan.discs[0].fill_percent < 1
        assert plan.load_hint == f"Load 1 blank {plan.medium.label} disc"
        by_subject = disc_sets.plan_disc_set(
            session, SYSTEM, t, exams, media="dvd", policy="subject", today=runtime.today()
        )
        assert [len(d.exam_ids) for d in by_subject.discs] == [2, 1]
        assert by_subject.medium.key == "dvd"
        assert session.scalar(select(DiscSet)) is None
    assert not (runtime.settings.data_dir / "discs").exists()


def test_exams_are_chosen_by_subject_and_time_point(runtime: Runtime, trial: Trial) -> None:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        assert len(disc_sets.choose_exams(session, t, subject="SUBJ-001")) == 2
        (bl,) = disc_sets.choose_exams(session, t, subject="SUBJ-001", timepoint="BL")
        assert bl.subject.subject_id == "SUBJ-001"
        with pytest.raises(ValidationError, match="no de-identified exam"):
            disc_sets.choose_exams(session, t, subject="NOBODY")


def test_an_exam_awaiting_pixel_review_is_refused(runtime: Runtime, trial: Trial) -> None:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exam = session.scalars(select(Exam).order_by(Exam.id)).first()
        assert exam is not None
        exam.needs_pixel_review, exam.pixel_reviewed_at = True, None
        assert len(disc_sets.choose_exams(session, t)) == 2
        with pytest.raises(ValidationError, match="pixel review pending"):
            disc_sets.choose_exams(session, t, exam_ids=[exam.id])


def test_a_built_set_is_ready_and_its_image_reads_back(runtime: Runtime, trial: Trial) -> None:
    tools = real_tools()
    set_id = build(runtime, trial)
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, set_id)
        assert disc_set is not None and disc_set.state == DiscSetState.READY, disc_set
        (disc,) = disc_set.discs
        assert disc.state == DiscState.READY and len(disc.exams) == 3
        assert disc.iso_path == f"discs/{trial.id}/{set_id}/DISC001.iso"
        assert disc.fileset_id == f"ACM_301_{set_id}_D001"
        iso, label = data / disc.iso_path, data / disc.label_path
        assert iso.stat().st_size == disc.image_bytes
        manifest_sha, rows = read_manifest(iso)
        assert manifest_sha == disc.manifest_sha256
        assert len([r for r in rows if r.sop_instance_uid]) == 7
        info = subprocess.run(
            [tools["isoinfo"], "-d", "-i", str(iso)], capture_output=True, text=True, check=True
        ).stdout
        assert f"Volume id: {disc.fileset_id}" in info
        listing = subprocess.run(
            [tools["isoinfo"], "-l", "-i", str(iso)], capture_output=True, text=True, check=True
        ).stdout
        assert "DICOMDIR.;1" in listing and "MANIFEST.CSV;1" in listing
        text = subprocess.run(
            [tools["pdftotext"], str(label), "-"], capture_output=True, text=True, check=True
        ).stdout
        for expected in ("SUBJ-001, SUBJ-002", "Site S01", "Disc 1 of 1", "De-identified"):
            assert expected in text
        raw = iso.read_bytes()
        assert not any(word.encode() in raw for word in FORBIDDEN)
        assert disc_sets.label_preview(data, disc).startswith(b"\x89PNG")


def test_a_set_per_subject_gives_one_disc_per_subject(runtime: Runtime, trial: Trial) -> None:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exams = disc_sets.choose_exams(session, t)
        disc_set = disc_sets.create_disc_set(
            session, SYSTEM, t, exams, policy="subject", today=runtime.today()
        )
        session.commit()
        assert disc_set.job_id is not None
        job = disc_sets.run_build_job(session, disc_set.job_id, data_dir=runtime.settings.data_dir)
        assert job.state == JobState.DONE and job.done == job.total
        assert [len(d.exams) for d in disc_set.discs] == [2, 1]
        assert {e.subject.subject_id for e in disc_set.discs[1].exams} == {"SUBJ-002"}


def test_a_file_changed_since_import_fails_the_set_and_leaves_no_disc(
    runtime: Runtime, trial: Trial
) -> None:
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        path = data / session.scalars(select(Instance.path)).first()  # type: ignore[operator]
    with path.open("ab") as f:
        f.write(b"\0\0")
    set_id = build(runtime, trial)
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, set_id)
        assert disc_set is not None and disc_set.state == DiscSetState.FAILED
        assert "changed since it was imported" in disc_set.message
        assert session.scalar(select(Disc)) is None
        assert not (data / "discs" / str(trial.id) / str(set_id)).exists()


def test_a_file_changed_in_place_is_caught_as_it_is_copied(runtime: Runtime, trial: Trial) -> None:
    # Same size, one byte different: only the SHA-256 taken while copying can tell.
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        path = data / session.scalars(select(Instance.path)).first()  # type: ignore[operator]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    set_id = build(runtime, trial)
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, set_id)
        assert disc_set is not None and disc_set.state == DiscSetState.FAILED
        assert "changed since it was imported" in disc_set.message
        assert path.name in disc_set.message
        assert session.scalar(select(Disc)) is None
        assert not (data / "discs" / str(trial.id) / str(set_id)).exists()


def burn(runtime: Runtime, disc: Disc, device: str) -> Job:
    """Request a burn and run its job, as the queue would."""
    with runtime.db.unit_of_work() as session:
        job = disc_burns.create_burn_job(
            session,
            SYSTEM,
            session.merge(disc),
            device,
            data_dir=runtime.settings.data_dir,
            today=runtime.today(),
        )
        session.commit()
        return disc_burns.run_burn_job(
            session, job.id, data_dir=runtime.settings.data_dir, clock=lambda: NOW
        )


def test_burning_to_a_pseudo_drive_is_a_job_recorded_as_verified(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    real_tools()
    set_id = build(runtime, trial)
    with runtime.db.unit_of_work() as session:
        (disc,) = session.get(DiscSet, set_id).discs  # type: ignore[union-attr]
    job = burn(runtime, disc, f"stdio:{tmp_path / 'x.iso'}")
    assert job.state == JobState.DONE and job.kind == "disc_burn" and job.done == job.total
    assert job.message == "written and verified"
    with runtime.db.unit_of_work() as session:
        disc = session.get(Disc, disc.id)  # type: ignore[assignment]
        assert disc.burned_at == NOW and disc.burn_verified
        assert disc.burned_by == SYSTEM.label and disc.burn_message == "written and verified"
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "disc.burn"))
        assert event.details["verified"] is True and event.object_id == str(disc.id)
        assert not any(word in str(event.details) for word in FORBIDDEN)


def test_burning_to_a_full_device_fails_the_job_with_xorrisos_words(
    runtime: Runtime, trial: Trial
) -> None:
    real_tools()
    set_id = build(runtime, trial)
    with runtime.db.unit_of_work() as session:
        (disc,) = session.get(DiscSet, set_id).discs  # type: ignore[union-attr]
    job = burn(runtime, disc, "stdio:/dev/full")
    assert job.state == JobState.FAILED and job.message.startswith("not burned: ")
    with runtime.db.unit_of_work() as session:
        disc = session.get(Disc, disc.id)  # type: ignore[assignment]
        assert disc.burned_at is None and not disc.burn_verified
        assert disc.burn_device == "stdio:/dev/full"
        assert disc.burn_message and "written" not in disc.burn_message
        assert disc.burn_message in job.message
        disc_burns.mark_burned(
            session, SYSTEM, disc, today=runtime.today(), now=NOW + dt.timedelta(1)
        )
        assert disc.burned_at is not None and not disc.burn_verified


def test_a_second_burn_on_a_busy_drive_is_refused_and_never_overlaps(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    real_tools()
    set_id = build(runtime, trial)
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, set_id)
        (disc,) = disc_set.discs  # type: ignore[union-attr]
    device = f"stdio:{tmp_path / 'drive.iso'}"
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        first = disc_burns.create_burn_job(
            session, SYSTEM, session.merge(disc), device, data_dir=data, today=runtime.today()
        )
        session.commit()
        # While the first waits in the queue, the drive is busy for every other request.
        with pytest.raises(Conflict, match="drive busy"):
            disc_burns.create_burn_job(
                session, SYSTEM, session.merge(disc), device, data_dir=data, today=runtime.today()
            )
        session.rollback()
        # A job that finds the drive locked (another process burning) fails without a burn.
        with disc_burns.drive_lock(data, device):
            job = disc_burns.run_burn_job(session, first.id, data_dir=data)
        assert job.state == JobState.FAILED and "drive busy" in job.message
        assert not (tmp_path / "drive.iso").exists()
        # Run again, the job does nothing: a failed or finished burn is never repeated.
        assert disc_burns.run_burn_job(session, first.id, data_dir=data).state == JobState.FAILED


def test_a_burn_left_running_by_a_dead_worker_does_not_block_its_drive(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    real_tools()
    set_id = build(runtime, trial)
    data = runtime.settings.data_dir
    device = f"stdio:{tmp_path / 'drive.iso'}"
    with runtime.db.unit_of_work() as session:
        (disc,) = session.get(DiscSet, set_id).discs  # type: ignore[union-attr]
        stale = disc_burns.create_burn_job(
            session, SYSTEM, disc, device, data_dir=data, today=runtime.today()
        )
        stale.state = JobState.RUNNING  # its worker was killed: no process holds the lock
        session.commit()
        fresh = disc_burns.create_burn_job(
            session, SYSTEM, disc, device, data_dir=data, today=runtime.today()
        )
        session.commit()
        assert session.get(Job, stale.id).state == JobState.FAILED  # type: ignore[union-attr]
        assert "interrupted" in session.get(Job, stale.id).message  # type: ignore[union-attr]
        assert disc_burns.run_burn_job(session, fresh.id, data_dir=data).state == JobState.DONE


def test_a_failed_set_is_rebuilt_then_a_failed_one_deleted(runtime: Runtime, trial: Trial) -> None:
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        path = data / session.scalars(select(Instance.path)).first()  # type: ignore[operator]
    original = path.read_bytes()
    path.write_bytes(original + b"\0\0")
    set_id = build(runtime, trial)
    path.write_bytes(original)  # the file is put back: a rebuild now succeeds
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, set_id)
        assert disc_set is not None and disc_set.state == DiscSetState.FAILED
        job = disc_sets.rebuild_disc_set(session, SYSTEM, disc_set, today=runtime.today())
        assert job.id == disc_set.job_id and job.state == JobState.QUEUED
        session.commit()
        disc_sets.run_build_job(session, job.id, data_dir=data)
        assert disc_set.state == DiscSetState.READY and len(disc_set.discs) == 1
        # Its images are dated by the set: built again, the image has the same bytes.
        sha256 = disc_set.discs[0].sha256
        disc_set.state = DiscSetState.FAILED
        job = disc_sets.rebuild_disc_set(session, SYSTEM, disc_set, today=runtime.today())
        session.commit()
        disc_sets.run_build_job(session, job.id, data_dir=data)
        assert disc_set.state == DiscSetState.READY and disc_set.discs[0].sha256 == sha256
        with pytest.raises(Conflict, match="only a failed set"):
            disc_sets.rebuild_disc_set(session, SYSTEM, disc_set, today=runtime.today())
        with pytest.raises(Conflict, match="only a failed set"):
            disc_sets.delete_disc_set(
                session, SYSTEM, disc_set, data_dir=data, today=runtime.today()
            )
    path.write_bytes(original + b"\0\0")
    second = build(runtime, trial, state="")
    with runtime.db.unit_of_work() as session:
        disc_set = session.get(DiscSet, second)
        assert disc_set is not None and disc_set.state == DiscSetState.FAILED
        disc_sets.delete_disc_set(session, SYSTEM, disc_set, data_dir=data, today=runtime.today())
        session.commit()
        assert session.get(DiscSet, second) is None
        assert session.get(DiscSet, set_id) is not None  # the ready set is untouched
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "disc_set.delete"))
        assert event.object_id == str(second)


def test_a_disk_full_on_the_second_disc_leaves_no_disc_ready(
    runtime: Runtime, trial: Trial
) -> None:
    def disk_fills_on_disc_two(done: int, total: int, what: str) -> None:
        if what.startswith("DISC002"):
            raise OSError(28, "No space left on device")

    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exams = disc_sets.choose_exams(session, t)
        disc_set = disc_sets.create_disc_set(
            session, SYSTEM, t, exams, policy="subject", today=runtime.today()
        )
        session.commit()
        assert disc_set.job_id is not None
        job = disc_sets.run_build_job(
            session, disc_set.job_id, data_dir=data, progress=disk_fills_on_disc_two
        )
        assert job.state == JobState.FAILED and "No space left on device" in job.message
        assert disc_set.state == DiscSetState.FAILED and disc_set.message == job.message
        assert session.scalar(select(Disc)) is None
        assert not disc_sets.set_folder(data, disc_set).exists()


def run_with_progress(runtime: Runtime, trial: Trial, progress: disc_sets.Report) -> DiscSet:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        exams = disc_sets.choose_exams(session, t)
        disc_set = disc_sets.create_disc_set(session, SYSTEM, t, exams, today=runtime.today())
        session.commit()
        assert disc_set.job_id is not None
        disc_sets.run_build_job(
            session, disc_set.job_id, data_dir=runtime.settings.data_dir, progress=progress
        )
        session.expunge(disc_set)
        return disc_set


def test_the_images_are_written_by_a_child_process_that_is_gone_after(
    runtime: Runtime, trial: Trial
) -> None:
    seen: set[str] = set()

    def progress(done: int, total: int, what: str) -> None:
        seen.update(p.name for p in multiprocessing.active_children())

    disc_set = run_with_progress(runtime, trial, progress)
    assert disc_set.state == DiscSetState.READY, disc_set.message
    assert seen == {"trialship-disc-images"}
    assert not multiprocessing.active_children()


def test_a_killed_image_process_fails_the_set_with_its_exit_code(
    runtime: Runtime, trial: Trial
) -> None:
    def kill_the_writer(done: int, total: int, what: str) -> None:
        for child in multiprocessing.active_children():
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            child.join()

    disc_set = run_with_progress(runtime, trial, kill_the_writer)
    assert disc_set.state == DiscSetState.FAILED
    assert disc_set.message == (
        "disc build failed: the process writing the disc images ended without a result "
        "(exit code -9)"
    )
    with runtime.db.unit_of_work() as session:
        assert session.scalar(select(Disc)) is None
        job = session.get(Job, disc_set.job_id)
        assert job is not None and job.state == JobState.FAILED
    assert not disc_sets.set_folder(runtime.settings.data_dir, disc_set).exists()
