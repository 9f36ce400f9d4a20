"""The read-back that follows the image as it is written, the manifest written last, and what
happens when a source or the image is not what it should be."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from media_samples import Series, write_image
from pydicom.uid import generate_uid

import trialship.media.build as build_module
import trialship.media.iso as iso_module
from trialship.media.build import DiscFile, build_disc
from trialship.media.capacity import Medium
from trialship.media.dicomdir import entry_from_file, number_entries
from trialship.media.errors import MediaError, SourceChangedError
from trialship.media.iso import ImageFile, part_path, write_iso
from trialship.media.manifest import MANIFEST_NAME, FileStamp, hash_file, parse_manifest
from trialship.media.verify import read_directory, verify_image
from trialship.media.watermark import Watermark, WriterFailed
from trialship.services.media_build import read_sources


def _files(tmp_path: Path, count: int, *, hashed: bool) -> list[DiscFile]:
    series = Series("SUBJ001", generate_uid(), "20240105", generate_uid(), 1, "CT", count)
    paths = [write_image(tmp_path / f"src{n}.dcm", series, n + 1) for n in range(count)]
    by_uid = {}
    for path in paths:
        entry = entry_from_file(path)
        by_uid[entry.sop_instance_uid] = (path, entry)
    numbered = number_entries(e for _, e in by_uid.values())
    return [
        DiscFile(
            str(by_uid[e.sop_instance_uid][0]),
            e.file_id,
            e,
            hash_file(by_uid[e.sop_instance_uid][0])[1] if hashed else None,
        )
        for e in numbered
        if e.file_id
    ]


def _build(files: list[DiscFile], out: Path) -> build_module.BuiltDisc:
    return build_disc(
        files,
        out,
        fileset_id="HASHTEST",
        fileset_uid="2.25.1",
        medium=Medium.CD80,
        readme_text="test",
    )


class _Lockstep(Watermark):
    """A watermark whose writer waits, at every advance, until the reader has read up to it:
    so the reader reads every region while the rest of the image is still being written."""

    def __init__(self) -> None:
        super().__init__()
        self.caught_up = threading.Condition()
        self.read_to = 0

    def advance(self, offset: int) -> None:
        super().advance(offset)
        with self.caught_up:
            self.caught_up.wait_for(lambda: self.read_to >= offset, timeout=5)

    def reader_at(self, offset: int) -> None:
        with self.caught_up:
            self.read_to = offset
            self.caught_up.notify_all()


def _follow(image: Path, written: _Lockstep, reads: list[tuple[int, bytes]]) -> None:
    """Read `image` as the read-back does: block by block, never past the mark."""
    done = 0
    written.wait_for(1)  # the file exists, its head is written
    with open(image, "rb", buffering=0) as fp:
        while True:
            mark = written.wait_for(done + 1)
            if mark <= done:
                return
            block = fp.read(mark - done)
            reads.append((done, block))
            done += len(block)
            written.reader_at(done)


def test_a_reader_below_the_watermark_reads_only_final_bytes(tmp_path: Path) -> None:
    sources = []
    for n in range(5):
        path = tmp_path / f"f{n}"
        path.write_bytes(bytes([n + 1]) * (3000 + 1000 * n))  # not whole sectors: padding
        sources.append(path)
    image = tmp_path / "x.iso"
    written = _Lockstep()
    reads: list[tuple[int, bytes]] = []
    reader = threading.Thread(target=_follow, args=(part_path(image), written, reads))
    reader.start()
    size, in_order = write_iso(
        image,
        [
            ImageFile("A.TXT", b"first"),
            ImageFile("B.TXT", b"second" * 700),
            *(ImageFile(f"D/E/F{n}", path) for n, path in enumerate(sources)),
        ],
        volume_id="T",
        medium=Medium.CD80,
        written=written,
    )
    reader.join()
    assert in_order and written.size == size
    assert len(reads) > 5  # read while the image was written, a region at a time
    assert b"".join(block for _, block in reads) == image.read_bytes()


def test_files_given_out_of_layout_order_are_reported(tmp_path: Path) -> None:
    deep, shallow = tmp_path / "deep", tmp_path / "shallow"
    deep.write_bytes(b"d" * 5000)
    shallow.write_bytes(b"s" * 5000)
    # The folder walk puts ROOT.TXT's extent before D/DEEP's; written in this order, pycdlib
    # goes back to write it, below bytes a reader may have read.
    _, in_order = write_iso(
        tmp_path / "y.iso",
        [ImageFile("D/DEEP", deep), ImageFile("ROOT.TXT", shallow)],
        volume_id="T",
        medium=Medium.CD80,
        written=Watermark(),
    )
    assert not in_order


def test_a_failed_writer_stops_its_reader() -> None:
    written = Watermark()
    written.advance(10)
    assert written.wait_for(5) == 10
    written.fail()
    with pytest.raises(WriterFailed):
        written.wait_for(20)


def test_the_disc_sha256_is_the_image_file_sha256(tmp_path: Path) -> None:
    built = _build(_files(tmp_path, 4, hashed=True), tmp_path / "disc.iso")
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()
    assert verify_image(built.path).image_sha256 == built.sha256


def test_an_image_written_out_of_order_is_read_back_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = build_module.write_iso

    def out_of_order(*args: object, **kwargs: object) -> tuple[int, bool]:
        size, _ = real(*args, **kwargs)  # type: ignore[arg-type]
        return size, False

    monkeypatch.setattr(build_module, "write_iso", out_of_order)
    built = _build(_files(tmp_path, 3, hashed=False), tmp_path / "disc.iso")
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()


def test_files_without_a_known_hash_are_hashed_as_they_are_copied(tmp_path: Path) -> None:
    files = _files(tmp_path, 3, hashed=False)
    built = _build(files, tmp_path / "disc.iso")
    by_path = {row.path: row.sha256 for row in built.rows}
    for f in files:
        assert by_path[f.file_id.posix] == hash_file(f.src_path)[1]


@pytest.mark.parametrize(
    ("known", "says"),
    [
        ("hash", "changed since it was recorded"),  # the registry's SHA-256
        ("stamp", "changed since its header was read"),  # media build: hashed while copied
    ],
)
def test_a_source_that_changes_before_it_is_copied_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, known: str, says: str
) -> None:
    files = _files(tmp_path, 3, hashed=known == "hash")
    if known == "stamp":
        for f in files:  # written an hour ago, so a change now gives another time to the ns
            os.utime(f.src_path, (time.time() - 3600,) * 2)
        files = [dataclasses.replace(f, stamp=FileStamp.of_path(f.src_path)) for f in files]
    victim = Path(files[1].src_path)
    real = build_module.write_iso

    def change_then_write(*args: object, **kwargs: object) -> tuple[int, bool]:
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF  # same size, other bytes
        victim.write_bytes(bytes(data))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "write_iso", change_then_write)
    with pytest.raises(SourceChangedError, match=f"{victim.name} {says}"):
        _build(files, tmp_path / "disc.iso")
    assert not (tmp_path / "disc.iso").exists()
    assert not (tmp_path / "disc.iso.part").exists()


def test_an_image_that_differs_from_its_sources_is_a_media_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 2, hashed=True)
    victim = str(files[-1].src_path)
    real = iso_module._Source.read

    def bad_copy(self: iso_module._Source, size: int = -1) -> bytes:
        chunk = real(self, size)
        if str(self.source) == victim and chunk:
            return bytes([chunk[0] ^ 0xFF]) + chunk[1:]  # the image gets other bytes
        return chunk

    monkeypatch.setattr(iso_module._Source, "read", bad_copy)
    with pytest.raises(MediaError, match="differs from the manifest") as caught:
        _build(files, tmp_path / "disc.iso")
    assert not isinstance(caught.value, SourceChangedError)
    assert not (tmp_path / "disc.iso").exists()


def test_read_sources_takes_recorded_hashes_and_stamps_every_file(tmp_path: Path) -> None:
    files = _files(tmp_path, 3, hashed=False)
    paths = [f.src_path for f in files]
    sources, skipped = read_sources(paths, tmp_path / "work")
    assert not skipped
    assert {s.sha256 for s in sources} == {None}  # hashed later, as they are copied
    assert {s.path: s.stamp for s in sources} == {p: FileStamp.of_path(p) for p in paths}
    recorded = {paths[0]: "0" * 64}
    given, _ = read_sources(paths, tmp_path / "work", recorded=recorded)
    assert {s.path: s.sha256 for s in given}[paths[0]] == "0" * 64  # the record, not re-hashed


def test_a_manifest_written_last_is_laid_out_last_so_the_image_streams_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 4, hashed=False)
    real = build_module.write_iso
    orders: list[bool] = []

    def record(*args: object, **kwargs: object) -> tuple[int, bool]:
        size, in_order = real(*args, **kwargs)  # type: ignore[arg-type]
        orders.append(in_order)
        return size, in_order

    monkeypatch.setattr(build_module, "write_iso", record)
    built = _build(files, tmp_path / "disc.iso")
    assert orders == [True]
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()
    extents, manifest = read_directory(built.path, with_manifest=True)
    assert parse_manifest(manifest) == list(built.rows)
    ends = {path: max(o + n for o, n in e.runs) for path, e in extents.items()}
    assert max(ends, key=lambda path: ends[path]) == MANIFEST_NAME  # its data ends the image


def test_a_write_that_fails_half_way_stops_the_read_back_and_leaves_no_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 6, hashed=False)
    real = iso_module._Source.read
    copied: list[str] = []

    def disk_full_at_the_fourth(self: iso_module._Source, size: int = -1) -> bytes:
        if str(self.source) not in copied:
            copied.append(str(self.source))
        if len(copied) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, size)

    monkeypatch.setattr(iso_module._Source, "read", disk_full_at_the_fourth)
    with pytest.raises(MediaError, match="No space left on device"):
        _build(files, tmp_path / "out" / "disc.iso")
    assert list((tmp_path / "out").iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "read-back"]  # it has stopped


def test_the_read_back_checks_the_written_layout_against_the_image_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 3, hashed=True)
    real = iso_module._layout

    def misplaced(*args: object) -> list[tuple[int, int, str]]:
        layout = real(*args)  # type: ignore[arg-type]
        name = files[0].file_id.posix
        n, (offset, length, _) = next((n, p) for n, p in enumerate(layout) if p[2] == name)
        layout[n] = (offset + 2048, length, name)  # not where the directory says it is
        return layout

    monkeypatch.setattr(iso_module, "_layout", misplaced)
    with pytest.raises(MediaError, match=f"does not place {files[0].file_id.posix} where"):
        _build(files, tmp_path / "disc.iso")
    assert not (tmp_path / "disc.iso").exists()
