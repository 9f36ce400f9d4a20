"""A worker of a `--jobs N` run closes its output files on a thread of its own, while it reads
the next ones: a file counts as written only once that close succeeded, and one that failed is
reported as it would have been had the close not been put off, its partial removed."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from tests.unit.ct_files import ct_file
from trialship.deid import parse_profile
from trialship.intake.output_file import OutputFile
from trialship.intake.sources import SourceItem, iter_sources
from trialship.services import deid_files

PROFILE = """\
[trial]
sponsor_name = "Acme Oncology"
protocol_id = "ACM-301"

[deid]
uid_secret = "unit-secret-0123456789"
"""


def _file(number: int, path: Path) -> None:
    path.write_bytes(
        ct_file(
            rows=64,
            columns=64,
            pixels=bytes([number]) * (64 * 64 * 2),
            SOPInstanceUID=f"1.2.826.0.1.3680043.99.5.{number}",
            StudyInstanceUID="1.2.826.0.1.3680043.99.5",
            SeriesInstanceUID="1.2.826.0.1.3680043.99.5.0",
            PatientName="Okafor^Liam",
            PatientID="MRN5550001",
            Modality="CT",
            InstanceNumber=str(number),
        )
    )


@pytest.fixture
def tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[deid_files._Task]:
    src = tmp_path / "src"
    src.mkdir()
    for number in range(1, 7):
        _file(number, src / f"{number}.dcm")
    out = tmp_path / "out"
    out.mkdir()
    worker = deid_files._Worker(
        parse_profile(PROFILE),
        deid_files.Assignment(subject_id="ACM-0001", site_id="S01", timepoint_id="BL"),
        None,
        out,
    )
    monkeypatch.setitem(deid_files._STATE, "worker", worker)
    items = [item for item in iter_sources((src,)) if isinstance(item, SourceItem)]
    return [deid_files._Task(index, item) for index, item in enumerate(items)]


def test_every_file_is_whole_when_its_result_is_handed_back(
    tasks: list[deid_files._Task],
) -> None:
    results = deid_files._process_chunk(tasks)
    assert [done.index for done in results] == list(range(6))
    for done in results:
        assert done.reason is None and done.stop is None and done.partial
        digest = hashlib.sha256(Path(done.partial).read_bytes()).hexdigest()
        assert digest == done.output_sha256


def test_a_failed_close_is_reported_for_its_file_and_its_partial_removed(
    tasks: list[deid_files._Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OutputFile.close
    closed: list[int] = []

    def failing(self: OutputFile, *, discard: bool = False, through_cache: bool = False) -> None:
        real(self, discard=discard, through_cache=through_cache)
        if discard:
            return
        closed.append(1)  # one thread closes them all, in the order they were written
        if len(closed) == 3:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        if len(closed) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(OutputFile, "close", failing)
    monkeypatch.setattr(deid_files, "_CLOSING", len(tasks))  # every close on the thread, in order
    out = deid_files._STATE["worker"].out
    results = deid_files._process_chunk(tasks)
    assert [done.index for done in results] == list(range(6))
    assert results[2].reason == "cannot write: Input/output error"
    assert results[4].stop == "No space left on device"
    for failed in (results[2], results[4]):
        assert failed.partial is None and not failed.output_sha256
    written = [done for done in results if done.index not in (2, 4)]
    assert all(done.partial and Path(done.partial).exists() for done in written)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        Path(done.partial or "").name for done in written
    )


def test_a_file_goes_through_the_page_cache_when_the_disk_falls_behind(
    tasks: list[deid_files._Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OutputFile.close
    behind = threading.Event()
    through: list[int] = []

    def slow(self: OutputFile, *, discard: bool = False, through_cache: bool = False) -> None:
        if through_cache:
            through.append(1)
        elif not discard:
            assert behind.wait(30)  # the disk: busy until a file has gone through the cache
        real(self, discard=discard, through_cache=through_cache)
        if through_cache:
            behind.set()

    monkeypatch.setattr(OutputFile, "close", slow)
    results = deid_files._process_chunk(tasks)
    assert through  # the third file at the latest: two closes were waiting for the disk
    assert [done.index for done in results] == list(range(6))
    for done in results:
        assert done.reason is None and done.stop is None and done.partial
        digest = hashlib.sha256(Path(done.partial).read_bytes()).hexdigest()
        assert digest == done.output_sha256
