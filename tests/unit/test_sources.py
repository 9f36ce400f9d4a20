"""Listing inputs: folders recursively, zips unextracted, unsafe entries and bombs refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from trialship.intake.sources import (
    SourceItem,
    SourceRejection,
    ZipEntryTooLarge,
    ZipLimits,
    iter_sources,
    local_file,
    unsafe_member_name,
)


def _labels(entries: list[SourceItem | SourceRejection]) -> list[str]:
    return [Path(entry.label.split("!")[-1]).name for entry in entries]


def test_folders_are_walked_in_a_stable_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("b/2.dcm", "a/deep/1.dcm", "a/0.dcm"):
        (tmp_path / name).write_bytes(b"x")
    entries = list(iter_sources([tmp_path, tmp_path / "missing"]))
    assert _labels(entries) == ["0.dcm", "1.dcm", "2.dcm", "missing"]
    assert isinstance(entries[-1], SourceRejection)


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("ok/file.dcm", None),
        ("../up.dcm", "'..'"),
        ("a/../../up.dcm", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/windows.dcm", "absolute"),
        ("a\\..\\b.dcm", "'..'"),
    ],
)
def test_unsafe_zip_member_names(name: str, refused: str | None) -> None:
    reason = unsafe_member_name(name)
    assert (reason is None) if refused is None else (refused in (reason or ""))


def test_zip_entries_are_listed_and_extracted_one_at_a_time(tmp_path: Path) -> None:
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("s1/a.dcm", b"first")
        zf.writestr("../evil.dcm", b"evil")
    entries = list(iter_sources([archive]))
    assert _labels(entries) == ["a.dcm", "evil.dcm"]
    item, evil = entries
    assert isinstance(item, SourceItem) and isinstance(evil, SourceRejection)
    with local_file(item, tmp_path / "scratch") as path:
        assert path.read_bytes() == b"first"
    assert list((tmp_path / "scratch").iterdir()) == []


def test_zip_bomb_guard_ratio_and_total(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * (4 << 20))
        zf.writestr("small.bin", b"\0" * 1000)
    entries = list(iter_sources([archive]))
    assert isinstance(entries[0], SourceRejection) and "ratio" in entries[0].reason
    assert isinstance(entries[1], SourceItem)  # small entries are never refused for ratio
    total = list(iter_sources([archive], ZipLimits(max_total_bytes=1 << 20)))
    assert len(total) == 1 and "exceeds" in total[0].reason  # type: ignore[union-attr]


def test_an_entry_larger_than_declared_stops_extraction(tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.bin", b"y" * 5000)
    liar = SourceItem(label="liar", path=archive, member="a.bin", size=100)
    with pytest.raises(ZipEntryTooLarge), local_file(liar, tmp_path / "scratch"):
        pass


def test_broken_and_looping_links_are_refused_with_their_reason(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(b"x")
    (tmp_path / "b_broken.dcm").symlink_to(tmp_path / "nowhere.dcm")
    (tmp_path / "c_loop.dcm").symlink_to(tmp_path / "c_loop.dcm")
    (tmp_path / "d.dcm").write_bytes(b"y")
    entries = list(iter_sources([tmp_path, tmp_path / "b_broken.dcm"]))
    assert _labels(entries) == ["a.dcm", "b_broken.dcm", "c_loop.dcm", "d.dcm", "b_broken.dcm"]
    broken, loop = entries[1], entries[2]
    assert isinstance(broken, SourceRejection) and isinstance(loop, SourceRejection)
    assert broken.label == str(tmp_path / "b_broken.dcm")
    assert broken.reason == "cannot read: broken symbolic link"
    assert loop.reason.startswith("cannot read: ") and "symbolic links" in loop.reason
    assert entries[-1] == broken  # named on the command line: the same reason, not "no such file"


def test_zip_entries_with_one_name_are_each_read_with_their_own_bytes(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("scan.dcm", b"first entry")
        zf.writestr("scan.dcm", b"second")
    items = list(iter_sources([archive]))
    assert all(isinstance(item, SourceItem) for item in items) and len(items) == 2
    read = []
    for item in items:
        assert isinstance(item, SourceItem)
        with local_file(item, tmp_path / "scratch") as path:
            read.append(path.read_bytes())
    assert read == [b"first entry", b"second"]
    assert [item.label for item in items] == [f"{archive}!scan.dcm (entry {n})" for n in (1, 2)]


def test_a_link_to_a_folder_is_named_not_followed(tmp_path: Path) -> None:
    (tmp_path / "src" / "real").mkdir(parents=True)
    (tmp_path / "src" / "real" / "a.dcm").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.dcm").write_bytes(b"y")
    (tmp_path / "src" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "src" / "up").symlink_to(tmp_path / "src")
    found = list(iter_sources([tmp_path / "src"]))
    rejected = {Path(e.label).name: e.reason for e in found if isinstance(e, SourceRejection)}
    assert sorted(rejected) == ["linked", "up"]
    assert all("not followed" in reason for reason in rejected.values())
    assert [Path(e.label).name for e in found if isinstance(e, SourceItem)] == ["a.dcm"]
