"""A zip entry is read from where the listing found it: the archive's directory is read once,
not once an entry (which made a zip of n entries cost n listings)."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from trialship.intake.sources import SourceItem, iter_sources, local_file


def _zip(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(count):
            zf.writestr(f"exam/I{n:05d}.dcm", f"entry {n} ".encode() * 50)
    return path


def _items(archive: Path) -> list[SourceItem]:
    found = list(iter_sources([archive]))
    items = [item for item in found if isinstance(item, SourceItem)]
    assert len(items) == len(found)
    return items


def test_entries_are_read_without_the_archive_directory(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "exam.zip", 300)
    items = _items(archive)
    # Past the entries, the directory is gone: a reader that listed the archive again fails.
    data = archive.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    (directory,) = struct.unpack("<I", data[end + 16 : end + 20])  # (its offset, APPNOTE 4.3.16)
    archive.write_bytes(data[:directory])
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(archive)
    for n in (0, 150, 299):
        with local_file(items[n], tmp_path / "scratch") as path:
            assert path.read_bytes() == f"entry {n} ".encode() * 50


def test_an_item_sent_to_a_worker_process_reads_the_same_bytes(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "exam.zip", 3)
    item = pickle.loads(pickle.dumps(_items(archive)[1]))
    with local_file(item, tmp_path / "scratch") as path:
        assert path.read_bytes() == b"entry 1 " * 50


def test_an_entry_moved_since_the_listing_is_an_error_not_other_bytes(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "exam.zip", 3)
    items = _items(archive)
    with zipfile.ZipFile(archive, "w") as zf:  # (written again, other names at those places)
        for n in range(3):
            zf.writestr(f"other/J{n:05d}.dcm", f"entry {n} ".encode() * 50)
    with (
        pytest.raises(zipfile.BadZipFile, match="changed after it was listed"),
        local_file(items[2], tmp_path / "scratch"),
    ):
        pass
    assert list((tmp_path / "scratch").iterdir()) == []
