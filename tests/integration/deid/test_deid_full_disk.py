"""A full output folder stops `trialship deid` with one line saying where; once there is room,
the same command finishes the run, and the result is what one run would have written."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from deid_samples import PHI, Cli, instance, write

from trialship.intake.output_file import OutputFile
from trialship.services import deid_files


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, files: int) -> Callable[[], None]:
    """Writes fail with ENOSPC beyond the first `files` instances; returns what makes room."""
    real = deid_files.write_instance

    def fills_up(instance: Any, *args: Any, **kwargs: Any) -> Any:
        # By the file, not by the call: two threads write, in an order of their own.
        if int(instance.dataset.InstanceNumber) > files:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(instance, *args, **kwargs)

    monkeypatch.setattr(deid_files, "write_instance", fills_up)
    return lambda: monkeypatch.setattr(deid_files, "write_instance", real)


def _finished_as_one_run(
    cli: Cli, src: Path, out: Path, whole: Path, *args: str, subject: bool = True
) -> None:
    """The same command finishes the stopped run in `out`: its files and receipts are what one
    run into `whole` writes."""
    finished = cli.deid(str(src), "--jobs", "1", *args, out=out, subject=subject)
    assert finished.exit_code == 0, finished.output
    assert cli.deid(str(src), "--jobs", "1", *args, out=whole, subject=subject).exit_code == 0
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.dcm")} == {
        p.relative_to(whole).as_posix(): p.read_bytes() for p in whole.rglob("*.dcm")
    }
    assert sorted(p.name for p in (out / "receipts").iterdir()) == sorted(
        p.name for p in (whole / "receipts").iterdir()
    )


def _twelve_files(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for number in range(1, 13):
        write(instance(number), src / f"{number:02d}.dcm")
    return src


def _says_stopped_by_a_full_disk(stopped: Result, out: Path) -> None:
    assert stopped.exit_code == 1
    assert stopped.output == (
        f"Error: stopped: cannot write into {out}: No space left on device; make room and run "
        "the same command again to finish the run\n"
    )


def test_a_full_disk_stops_the_run_and_the_same_command_finishes_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _twelve_files(tmp_path)
    make_room = _disk_full_after(monkeypatch, 5)
    out = tmp_path / "out"
    stopped = cli.deid(str(src), "--jobs", "1", out=out)
    _says_stopped_by_a_full_disk(stopped, out)
    assert not (out / "deid-report.json").exists()
    assert 0 < len(list(out.rglob("*.dcm"))) < 12

    make_room()
    _finished_as_one_run(cli, src, out, tmp_path / "whole")
    report = json.loads((out / "deid-report.json").read_text())
    assert report["summary"] == {"inputs": 12, "deidentified": 12}
    # No file was rejected for the disk's sake: none says "cannot read".
    assert all(entry["status"] == "deidentified" for entry in report["inputs"])


def test_another_runs_unfinished_folder_is_refused(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(instance(1), src / "a.dcm")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".trialship-run.jsonl").write_text(json.dumps({"run": "another"}) + "\n")
    refused = cli.deid(str(src), out=out)
    assert refused.exit_code == 2
    assert "holds an unfinished run of other sources, subjects or profile" in refused.output


def _stopped_run(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = tmp_path / "src"
    for number in range(1, 9):
        write(instance(number), src / f"{number:02d}.dcm")
    make_room = _disk_full_after(monkeypatch, 4)
    out = tmp_path / "out"
    assert cli.deid(str(src), "--jobs", "1", out=out).exit_code == 1
    make_room()
    return out


def test_a_stopped_runs_output_changed_since_is_not_taken_over(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _stopped_run(cli, tmp_path, monkeypatch)
    first = sorted(out.rglob("*.dcm"))[0]
    first.write_bytes(first.read_bytes()[:100])  # (what a crash without the data on disk leaves)
    refused = cli.deid(str(tmp_path / "src"), "--jobs", "1", out=out)
    assert refused.exit_code == 2
    assert "is gone or not what the run wrote; give a new or empty folder" in refused.output


def test_a_stopped_runs_source_changed_since_is_refused(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _stopped_run(cli, tmp_path, monkeypatch)
    source = tmp_path / "src" / "01.dcm"
    source.write_bytes(source.read_bytes() + b"\0\0")
    refused = cli.deid(str(tmp_path / "src"), "--jobs", "1", out=out)
    assert refused.exit_code == 2
    assert "the sources changed since the run" in refused.output and "not " in refused.output


def test_what_a_cut_final_write_left_is_cleared_when_the_run_is_finished(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _stopped_run(cli, tmp_path, monkeypatch)
    (out / ".deid-report.json.0123.part").write_text("{")
    (out / "receipts").mkdir(exist_ok=True)
    (out / "receipts" / ".ACM-0001_BL_1.json.0123.part").write_text("{")
    assert cli.deid(str(tmp_path / "src"), "--jobs", "1", out=out).exit_code == 0
    assert not list(out.rglob("*.part"))
    # Stopped after the report, before the journal went: finished, so a run into it is refused.
    (out / ".trialship-run.jsonl").write_text('{"run": "x"}\n')
    again = cli.deid(str(tmp_path / "src"), out=out)
    assert again.exit_code == 2 and "already holds" in again.output
    assert not (out / ".trialship-run.jsonl").exists()


def test_the_journal_of_a_stopped_run_by_map_holds_no_patient_id_or_accession(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The journal lies in the output folder: the map's original identifiers stay out of it.
    src = tmp_path / "src"
    for number in range(1, 7):
        write(instance(number), src / f"{number:02d}.dcm")
    rows = tmp_path / "map.csv"
    rows.write_text(
        "patient_id,subject_id,site_id,site_name,timepoint_id,timepoint_description,"
        "accession_number\n"
        f"{PHI['patient_id']},ACM-0001,S01,Site one,BL,Baseline,{PHI['accession']}\n"
    )
    make_room = _disk_full_after(monkeypatch, 3)
    out = tmp_path / "out"
    stopped = cli.deid(str(src), "--jobs", "1", "--map", str(rows), out=out, subject=False)
    assert stopped.exit_code == 1, stopped.output
    journal = (out / ".trialship-run.jsonl").read_text()
    assert '"kind": "done"' in journal
    assert PHI["patient_id"].lower() not in journal.lower()
    assert PHI["accession"].lower() not in journal.lower()

    make_room()
    _finished_as_one_run(cli, src, out, tmp_path / "whole", "--map", str(rows), subject=False)


def test_a_full_disk_met_as_a_worker_closes_a_file_stops_the_run_likewise(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With --jobs 2 a worker closes each file (its last blocks written) on a thread of its own
    # while it reads the next: the disk filling up there stops the run as anywhere else.
    src = _twelve_files(tmp_path)
    real = OutputFile.close

    def full(self: OutputFile, *, discard: bool = False) -> None:
        real(self, discard=True)
        if not discard:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(OutputFile, "close", full)  # (the forked workers inherit it)
    out = tmp_path / "out"
    stopped = cli.deid(str(src), "--jobs", "2", out=out)
    _says_stopped_by_a_full_disk(stopped, out)
    assert not list(out.rglob("*.dcm"))

    monkeypatch.setattr(OutputFile, "close", real)
    _finished_as_one_run(cli, src, out, tmp_path / "whole")
