"""Two imports of the same trial at once (two commands, a command and a web job): a row the
other import recorded first is recognised, no file is falsely quarantined, no output is left
without its row; and a re-import clears quarantine rows of files that were imported after all."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.exams.exam_samples import (
    STUDY,
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
from trialship.registry.imaging import Instance, QuarantinedFile
from trialship.registry.models import Exam, ExamState, Trial
from trialship.services import exam_import


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)


def meanwhile(
    monkeypatch: pytest.MonkeyPatch, method: str, other: Callable[[], Any], *, after: bool
) -> list[Any]:
    """The first call of `_Run.<method>` lets `other` (another import, in its own thread and
    session) run to its end before (or after) doing its own work: the race, made certain."""
    real = getattr(exam_import._Run, method)
    results: list[Any] = []

    def racing(self: exam_import._Run, *args: Any) -> Any:
        if results:
            return real(self, *args)
        results.append(None)
        mine = real(self, *args) if after else None
        thread = threading.Thread(target=lambda: results.append(other()))
        thread.start()
        thread.join()
        return mine if after else real(self, *args)

    monkeypatch.setattr(exam_import._Run, method, racing)
    return results


def consistent(data: Path) -> tuple[int, int]:
    """(instances, quarantine rows), after checking that every output has its row and hash,
    every exam counts its instances, and no partial file is left."""
    runtime = bootstrap({"data_dir": data})
    try:
        with runtime.db.unit_of_work() as session:
            instances = list(session.scalars(select(Instance)))
            quarantined = len(list(session.scalars(select(QuarantinedFile))))
            for exam in session.scalars(select(Exam)):
                mine = [i for i in instances if i.series.exam_pk == exam.id]
                assert exam.file_count == len(mine)
                assert exam.state == ExamState.DEIDENTIFIED
                assert exam.receipt is not None
                assert len(exam.receipt["payload"]["outputs"]) == len(mine)
    finally:
        runtime.db.dispose()
    for row in instances:
        output = (data / row.path).read_bytes()
        assert hashlib.sha256(output).hexdigest() == row.output_sha256
    outputs = {p.relative_to(data).as_posix() for p in (data / "exams").rglob("*") if p.is_file()}
    assert outputs == {row.path for row in instances}  # no orphan output (I00002_2.dcm)
    assert not [p for p in data.rglob("*") if p.name.endswith(".part")]
    return len(instances), quarantined


def test_a_file_the_other_import_recorded_meanwhile_is_skipped_and_leaves_no_file(
    runtime: Runtime, trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "in", 3)
    (tmp_path / "in" / "img001.dcm").rename(tmp_path / "first.dcm")
    run_import(runtime, trial, tmp_path / "first.dcm")  # the exam exists: B only adds files
    # B has looked up file 2 (not recorded) when A imports files 2 and 3; B's output would be
    # I00002_2.dcm, and its instance row is refused.
    other = meanwhile(
        monkeypatch, "output_path", lambda: run_import(runtime, trial, tmp_path / "in"), after=False
    )
    summary = run_import(runtime, trial, tmp_path / "in")
    assert other[1].count("imported") == 2
    assert summary.count("skipped") == 2 and not summary.quarantined
    assert consistent(runtime.settings.data_dir) == (3, 0)


def test_output_names_other_imports_took_meanwhile_give_this_file_the_next_free_one(
    runtime: Runtime, trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "in", 1)
    run_import(runtime, trial, tmp_path / "in")  # the exam exists: all only add files
    # Files of the series numbered 2, each with a SOP Instance UID of its own: all want
    # I00002.dcm.
    mine = write(exam_instance(2), tmp_path / "mine" / "img.dcm")
    for n in (1, 2):
        theirs = exam_instance(2)
        theirs.SOPInstanceUID = theirs.file_meta.MediaStorageSOPInstanceUID = f"{STUDY}.2.90{n}"
        write(theirs, tmp_path / f"theirs{n}" / "img.dcm")
    # Twice, B has its output name when another import records a file under it: B's instance
    # row is refused each time, and B writes its file under the next name (never over the
    # other's file, never into quarantine).
    real = exam_import._Run.output_path
    others: list[Any] = []
    b = threading.get_ident()

    def racing(self: exam_import._Run, *args: Any) -> str:
        name = real(self, *args)
        if threading.get_ident() == b and len(others) < 2:
            source = tmp_path / f"theirs{len(others) + 1}"
            thread = threading.Thread(
                target=lambda: others.append(run_import(runtime, trial, source))
            )
            thread.start()
            thread.join()
        return name

    monkeypatch.setattr(exam_import._Run, "output_path", racing)
    summary = run_import(runtime, trial, mine)
    assert [o.count("imported") for o in others] == [1, 1]
    assert summary.count("imported") == 1 and not summary.quarantined
    assert consistent(runtime.settings.data_dir) == (4, 0)
    with runtime.db.unit_of_work() as session:
        names = sorted(path.rsplit("/", 1)[1] for path in session.scalars(select(Instance.path)))
    assert names == ["I00001.dcm", "I00002.dcm", "I00002_2.dcm", "I00002_3.dcm"]


def test_an_exam_the_other_import_made_meanwhile_is_joined(
    runtime: Runtime, trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "in", 3)
    (tmp_path / "in" / "img001.dcm").rename(tmp_path / "first.dcm")
    # B found no exam for the study when A makes it (with file 1): B's exam row is refused.
    other = meanwhile(
        monkeypatch,
        "exam_for",
        lambda: run_import(runtime, trial, tmp_path / "first.dcm"),
        after=True,
    )
    summary = run_import(runtime, trial, tmp_path / "in")
    assert other[1].count("imported") == 1
    assert summary.count("imported") == 2 and not summary.quarantined
    assert consistent(runtime.settings.data_dir) == (3, 0)
    with runtime.db.unit_of_work() as session:
        assert len(list(session.scalars(select(Exam)))) == 1


def test_two_commands_importing_the_same_files_import_each_once_and_quarantine_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    data = tmp_path / "instance"
    registered_trial_cli(data)
    for study in range(2):
        write_exam(tmp_path / "in" / f"st{study}", 40, study=f"1.2.826.0.1.3680043.99.31.{study}")
    trialship = Path(sys.executable).with_name("trialship")
    command = [str(trialship), "--data", str(data), "import", str(tmp_path / "in")]
    runs = [
        subprocess.Popen(
            [*command, "--trial", "ACM-301"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    for code, out, err in results:
        assert code == 0, err
        assert "0 quarantined" in out
    imported = [int(out.split(" imported")[0].rsplit(" ", 1)[1]) for _, out, _ in results]
    assert sum(imported) == 80
    assert consistent(data) == (80, 0)


def test_a_reimport_clears_quarantine_rows_of_files_imported_after_all(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    first, second = write_exam(tmp_path / "in", 2)
    run_import(runtime, trial, tmp_path / "in")
    content = hashlib.sha256(first.read_bytes()).hexdigest()
    with runtime.db.unit_of_work() as session:
        (kept,) = session.scalars(
            select(Instance.original_path).where(Instance.input_sha256 == content)
        )
        # As the races and full disks of before left them: refused by content (its original
        # kept) while the other import recorded it; refused by name before it was stored.
        session.add_all(
            [
                QuarantinedFile(
                    trial_id=trial.id,
                    stored_path=kept,
                    sha256=content,
                    size=first.stat().st_size,
                    reason="cannot import: unexpected error (IntegrityError)",
                ),
                QuarantinedFile(
                    trial_id=trial.id,
                    sha256=runtime.vault.keyed_hash(str(second)),
                    reason="cannot read: No space left on device",
                ),
            ]
        )
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("skipped") == 2
    assert consistent(runtime.settings.data_dir) == (2, 0)
    assert (runtime.settings.data_dir / kept).is_file()  # (the instance's original)
