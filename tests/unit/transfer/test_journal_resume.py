"""The journal makes a re-run resume: confirmed files are skipped, nothing goes twice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from trialship.transfer import Journal, Package, PackageFile, TransferError, journal_key
from trialship.transfer.package import sha256_file, split_confirmed


class Crash(Exception):
    pass


class FakeSender:
    """Sends through the journal like the real senders; crashes after `crash_after` files."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, package: Package, journal: Journal, crash_after: int | None = None) -> int:
        skipped = 0
        for item in package.files:
            if journal.confirmed(item.remote, item.sha256):
                skipped += 1
                continue
            if crash_after is not None and len(self.sent) >= crash_after:
                raise Crash
            self.sent.append(item.remote)
            journal.confirm(item.remote, item.sha256, item.size)
        return skipped


def _package(folder: Path, count: int) -> Package:
    folder.mkdir(exist_ok=True)
    files = []
    for n in range(count):
        path = folder / f"f{n}.bin"
        if not path.exists():
            path.write_bytes(bytes([n]) * 100)
        digest, size = sha256_file(path)
        files.append(PackageFile(path, path.name, size, digest))
    return Package(tuple(files))


def test_a_crashed_run_resumes_without_resending_confirmed_files(tmp_path: Path) -> None:
    package = _package(tmp_path / "src", 10)
    sender = FakeSender()
    with Journal(tmp_path / "j.jsonl", "dest") as journal, pytest.raises(Crash):
        sender.send(package, journal, crash_after=4)
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        assert sender.send(package, journal) == 4
    assert sorted(sender.sent) == sorted(f.remote for f in package.files)  # each exactly once


def test_a_changed_file_is_sent_again(tmp_path: Path) -> None:
    sender = FakeSender()
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        sender.send(_package(tmp_path / "src", 3), journal)
    (tmp_path / "src" / "f1.bin").write_bytes(b"new content")
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        assert sender.send(_package(tmp_path / "src", 3), journal) == 2
    assert sender.sent.count("f1.bin") == 2


def test_a_line_cut_short_by_a_crash_only_costs_that_file(tmp_path: Path) -> None:
    package = _package(tmp_path / "src", 3)
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        FakeSender().send(package, journal)
    text = (tmp_path / "j.jsonl").read_bytes()
    (tmp_path / "j.jsonl").write_bytes(text[:-20])
    sender = FakeSender()
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        assert sender.send(package, journal) == 2
    assert sender.sent == ["f2.bin"]


def test_the_journal_of_another_destination_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "j.jsonl", "sftp://a@h:22/x").close()
    with pytest.raises(TransferError, match="is the journal of sftp://a@h:22/x"):
        Journal(tmp_path / "j.jsonl", "dicom://B@h:104")


def test_confirmations_are_on_disk_when_confirm_returns(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "dest")
    journal.confirm("a.dcm", "ab" * 32, 5, status="0x0000")
    lines = (tmp_path / "j.jsonl").read_text().splitlines()  # before close()
    assert '"remote":"a.dcm"' in lines[-1]
    journal.close()


def test_the_journal_key_depends_on_sources_and_destination(tmp_path: Path) -> None:
    a = journal_key([tmp_path / "x", tmp_path / "y"], "dicom://A@h:104")
    assert a == journal_key([tmp_path / "y", tmp_path / "x"], "dicom://A@h:104")
    assert a != journal_key([tmp_path / "x"], "dicom://A@h:104")
    assert a != journal_key([tmp_path / "x", tmp_path / "y"], "dicom://B@h:104")


def test_an_unhashed_package_is_hashed_only_where_the_journal_knows_the_file(
    tmp_path: Path,
) -> None:
    hashed = _package(tmp_path / "src", 4)
    with Journal(tmp_path / "j.jsonl", "dest") as journal:
        FakeSender().send(Package(hashed.files[:2]), journal)
        (tmp_path / "src" / "f1.bin").write_bytes(b"changed since")
        lazy = Package(tuple(replace(f, sha256=None) for f in hashed.files))
        done, todo = split_confirmed(lazy.files, journal)
    assert [f.remote for f, _ in done] == ["f0.bin"]
    assert done[0][0].sha256 == hashed.files[0].sha256
    # f1 is known (so hashed, and found changed); f2 and f3 are left for the sender to hash
    assert [(f.remote, f.sha256 is not None) for f in todo] == [
        ("f1.bin", True), ("f2.bin", False), ("f3.bin", False),
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"f0\.bin has not been hashed"):
        lazy.manifest()
    sums = {f.remote: "ab" * 32 for f in lazy.files}
    assert lazy.manifest(sums).decode().splitlines()[2] == f"{'ab' * 32}  f2.bin"


class NoEntries:
    """A journal-like object with only confirmed/confirm (as the registry's may be)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def confirmed(self, remote: str, sha256: str) -> dict[str, object] | None:
        self.asked.append(remote)
        return None


def test_a_journal_that_cannot_list_its_entries_gets_every_file_hashed_first(
    tmp_path: Path,
) -> None:
    lazy = [replace(f, sha256=None) for f in _package(tmp_path / "src", 3).files]
    journal = NoEntries()
    done, todo = split_confirmed(lazy, journal)
    assert not done and all(f.sha256 for f in todo)
    assert journal.asked == ["f0.bin", "f1.bin", "f2.bin"]
