"""A full disk, a full database or a data folder that refuses writes stops the import with one
clear message: nothing is quarantined for it, nothing half-written is recorded, and a re-run
after the problem is fixed imports the rest."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.integration.exams.exam_samples import (
    exam_instance,
    registered_trial_cli,
    seed_trial,
    write,
    write_exam,
)
from tests.integration.exams.exam_samples import (
    import_files as run_import,
)
from trialship.app import Runtime, bootstrap
from trialship.errors import TrialshipError
from trialship.registry.imaging import Instance, QuarantinedFile
from trialship.registry.models import Exam, ExamState, JobState, Trial, User
from trialship.services.authz import Actor
from trialship.services.import_jobs import (
    create_import_job,
    new_upload,
    run_import_job,
    upload_file_path,
)
from trialship.signing import load_or_create_signing_key

NOW = dt.datetime(2024, 2, 1, 12, 0)
STOPPED = r"; \d+ file\(s\) were imported, the rest will be on the re-run$"


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)


@pytest.fixture
def full_database(runtime: Runtime) -> Iterator[Callable[[], None]]:
    """The database refuses to grow past a few pages more than the seeded trial holds (SQLite's
    own SQLITE_FULL, as on a full disk) until the test calls the function this yields."""
    with runtime.db.engine.connect() as connection:
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())

    def limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 1}")

    def lift() -> None:
        if event.contains(runtime.db.engine, "connect", limit):
            event.remove(runtime.db.engine, "connect", limit)
        runtime.db.engine.dispose()

    event.listen(runtime.db.engine, "connect", limit)
    runtime.db.engine.dispose()
    yield lift
    lift()


def consistent(data: Path) -> tuple[int, int]:
    """(instances, quarantine rows) of the data folder, after checking that every output is
    recorded with its hash and no partial file is left."""
    runtime = bootstrap({"data_dir": data})
    try:
        with runtime.db.unit_of_work() as session:
            instances = list(session.scalars(select(Instance)))
            quarantined = len(list(session.scalars(select(QuarantinedFile))))
            for exam in session.scalars(select(Exam)):
                assert exam.file_count == len([i for i in instances if i.series.exam_pk == exam.id])
    finally:
        runtime.db.dispose()
    for row in instances:
        output = (data / row.path).read_bytes()
        assert hashlib.sha256(output).hexdigest() == row.output_sha256
    outputs = {p.relative_to(data).as_posix() for p in (data / "exams").rglob("*") if p.is_file()}
    assert outputs == {row.path for row in instances}  # no output without its row
    assert not [p for p in data.rglob("*") if p.name.endswith(".part")]
    return len(instances), quarantined


def test_a_full_database_stops_the_run_and_a_rerun_imports_the_rest(
    runtime: Runtime, trial: Trial, full_database: Callable[[], None], tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 30)
    data = runtime.settings.data_dir
    with pytest.raises(TrialshipError, match=rf"^the data folder {data} is full \(.*" + STOPPED):
        run_import(runtime, trial, tmp_path / "in")
    imported, quarantined = consistent(data)
    assert 0 < imported < 30 and quarantined == 0
    full_database()
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("imported") == 30 - imported and summary.count("skipped") == imported
    assert consistent(data) == (30, 0)
    with runtime.db.unit_of_work() as session:
        (exam,) = session.scalars(select(Exam))
        assert exam.state == ExamState.DEIDENTIFIED
        assert len(exam.receipt["payload"]["outputs"]) == 30


def test_a_full_database_fails_the_import_job_with_the_message(
    runtime: Runtime,
    trial: Trial,
    make_user: Callable[..., User],
    full_database: Callable[[], None],
    tmp_path: Path,
) -> None:
    coordinator = Actor.of(make_user("coordinator@example.org", admin=True))
    data = runtime.settings.data_dir
    token, files = new_upload(data)
    for number, path in enumerate(write_exam(tmp_path / "in", 30), start=1):
        shutil.copy(path, upload_file_path(files, number))
    today = runtime.today()
    with runtime.db.unit_of_work() as session:
        job_id = create_import_job(
            session, coordinator, session.merge(trial), token, data_dir=data, today=today
        ).id

    def run_job() -> tuple[JobState, str]:
        with runtime.db.unit_of_work() as session:
            job = run_import_job(
                session,
                runtime.vault,
                job_id,
                data_dir=data,
                signing_key=load_or_create_signing_key(data),
                today=today,
                now=NOW,
            )
            return job.state, job.message

    state, message = run_job()
    assert state == JobState.FAILED
    assert message.startswith(f"import failed: the data folder {data} is full (")
    assert "the rest will be on the re-run" in message
    assert consistent(data)[1] == 0
    full_database()
    assert run_job()[0] == JobState.DONE
    assert consistent(data) == (30, 0)


def test_a_data_folder_that_refuses_writes_stops_the_run_without_quarantining(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    data = runtime.settings.data_dir
    blocked = data / "originals" / str(trial.id)
    blocked.parent.mkdir()
    blocked.write_text("not a folder")  # (as root, a read-only mode would not refuse)
    with pytest.raises(
        TrialshipError,
        match=rf"^cannot write into the data folder {data} \(not a directory\): "
        r"correct that and import again; 0 file\(s\) were imported",
    ):
        run_import(runtime, trial, tmp_path / "in")
    assert consistent(data) == (0, 0)
    blocked.unlink()
    assert run_import(runtime, trial, tmp_path / "in").count("imported") == 2
    assert consistent(data) == (2, 0)


def test_a_full_disk_stops_the_command_and_a_rerun_after_freeing_space_imports_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mounting needs root, as the test peers do (scripts/test runs as root or with sudo).
    assert os.geteuid() == 0, "this test mounts a tmpfs: run the suite as root"
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    registered_trial_cli(tmp_path / "prepared" / "instance")
    sources = tmp_path / "in"
    for number in range(1, 31):  # 64 KiB of pixels each: the originals and outputs fill it
        ds = exam_instance(number, pixels=b"\x20\x01" * (32 << 10))
        ds.Rows, ds.Columns = 128, 256
        write(ds, sources / f"img{number:03d}.dcm")
    used = sum(p.stat().st_size for p in (tmp_path / "prepared").rglob("*") if p.is_file())
    size = used + (1536 << 10)
    mount, data = tmp_path / "tiny", tmp_path / "tiny" / "instance"
    mount.mkdir()
    trialship = Path(sys.executable).with_name("trialship")
    command = f"{trialship} --data {data} import {sources} --trial ACM-301"
    # A tmpfs in a private mount namespace: the real ENOSPC, no monkeypatching; the data
    # folder is copied out after each run (the mount goes with the namespace).
    shell = (
        f"mount -t tmpfs -o size={size} tmpfs {mount} && cp -a {tmp_path}/prepared/instance "
        f"{mount}/ && {{ {command} >{tmp_path}/out1 2>{tmp_path}/err1; echo $? >{tmp_path}/rc1; "
        f"cp -a {data} {tmp_path}/after_full; mount -o remount,size=64m {mount} && "
        f"{command} >{tmp_path}/out2 2>{tmp_path}/err2; echo $? >{tmp_path}/rc2; "
        f"cp -a {data} {tmp_path}/after_rerun; }}"
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the ENOSPC test (needs root): {result.stderr}")
    errors = (tmp_path / "err1").read_text()
    assert (tmp_path / "rc1").read_text().strip() == "1", errors
    assert "Traceback" not in errors and "quarantined:" not in errors
    (message,) = [line for line in errors.splitlines() if line.startswith("Error:")]
    assert message.startswith(f"Error: the data folder {data} is full (")
    assert message.endswith("the rest will be on the re-run")
    imported, quarantined = consistent(tmp_path / "after_full")
    assert 0 < imported < 30 and quarantined == 0
    assert (tmp_path / "rc2").read_text().strip() == "0", (tmp_path / "err2").read_text()
    assert (
        f"{30 - imported} imported, {imported} already imported, 0 quarantined"
        in (tmp_path / "out2").read_text()
    )
    assert consistent(tmp_path / "after_rerun") == (30, 0)
