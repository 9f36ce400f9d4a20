"""The image's SHA-256 taken from the bytes pycdlib writes, and what happens when it can't be."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from media_samples import Series, write_image
from pydicom.uid import generate_uid

import trialship.media.build as build_module
from trialship.media.build import DiscFile, build_disc
from trialship.media.capacity import Medium
from trialship.media.dicomdir import entry_from_file, number_entries
from trialship.media.errors import MediaError, SourceChangedError
from trialship.media.iso import ImageFile, write_iso
from trialship.media.manifest import hash_file
from trialship.media.verify import verify_image
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
            by_uid[e.sop_instance_uid][0],
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


def test_write_iso_streams_every_byte_of_the_image_in_order(tmp_path: Path) -> None:
    sources = []
    for n in range(5):
        path = tmp_path / f"f{n}"
        path.write_bytes(bytes([n]) * (3000 + 1000 * n))  # not whole sectors: padding between
        sources.append(path)
    seen: list[bytes] = []
    image = tmp_path / "x.iso"
    size, in_order = write_iso(
        image,
        [
            ImageFile("A.TXT", b"first"),
            ImageFile("B.TXT", b"second" * 700),
            *(ImageFile(f"D/E/F{n}", path) for n, path in enumerate(sources)),
        ],
        volume_id="T",
        medium=Medium.CD80,
        on_image=lambda chunk: seen.append(bytes(chunk)),
    )
    assert in_order
    assert b"".join(seen) == image.read_bytes() and size == image.stat().st_size


def test_files_given_out_of_layout_order_are_reported_not_streamed(tmp_path: Path) -> None:
    deep, shallow = tmp_path / "deep", tmp_path / "shallow"
    deep.write_bytes(b"d" * 5000)
    shallow.write_bytes(b"s" * 5000)
    seen: list[bytes] = []
    # The folder walk puts ROOT.TXT's extent before D/DEEP's; written in this order, pycdlib
    # goes back to write it, so the stream cannot be the image.
    _, in_order = write_iso(
        tmp_path / "y.iso",
        [ImageFile("D/DEEP", deep), ImageFile("ROOT.TXT", shallow)],
        volume_id="T",
        medium=Medium.CD80,
        on_image=lambda chunk: seen.append(bytes(chunk)),
    )
    assert not in_order


def test_the_disc_sha256_is_the_image_file_sha256(tmp_path: Path) -> None:
    built = _build(_files(tmp_path, 4, hashed=True), tmp_path / "disc.iso")
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()
    assert verify_image(built.path).image_sha256 == built.sha256


def test_without_a_stream_the_read_back_hashes_the_image(
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


def test_a_source_that_changes_after_it_was_hashed_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 3, hashed=True)
    victim = files[1].src_path
    real = build_module.write_iso

    def change_then_write(*args: object, **kwargs: object) -> tuple[int, bool]:
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF  # same size, other bytes: only the hash tells
        victim.write_bytes(bytes(data))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "write_iso", change_then_write)
    with pytest.raises(SourceChangedError, match=f"{victim.name} changed since it was recorded"):
        _build(files, tmp_path / "disc.iso")
    assert not (tmp_path / "disc.iso").exists()
    assert not (tmp_path / "disc.iso.part").exists()


def test_an_image_that_differs_from_its_sources_is_a_media_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, 2, hashed=True)
    real = build_module.write_iso

    def corrupt(out: Path, *args: object, **kwargs: object) -> tuple[int, bool]:
        result = real(out, *args, **kwargs)  # type: ignore[arg-type]
        part = out.with_name(out.name + ".part")
        data = bytearray(part.read_bytes())
        tail = files[-1].src_path.read_bytes()[-64:]
        at = data.rfind(tail)  # the last file's last bytes, inside the image
        data[at] ^= 0xFF
        part.write_bytes(bytes(data))
        return result

    monkeypatch.setattr(build_module, "write_iso", corrupt)
    with pytest.raises(MediaError, match="differs from the manifest") as caught:
        _build(files, tmp_path / "disc.iso")
    assert not isinstance(caught.value, SourceChangedError)


def test_media_build_hashes_its_sources_while_it_reads_their_headers(tmp_path: Path) -> None:
    files = _files(tmp_path, 3, hashed=False)
    paths = [f.src_path for f in files]
    sources, skipped = read_sources(paths, tmp_path / "work")
    assert not skipped
    assert {s.path: s.sha256 for s in sources} == {p: hash_file(p)[1] for p in paths}
    unhashed, _ = read_sources(paths, tmp_path / "work", hash_files=False)
    assert {s.sha256 for s in unhashed} == {None}
    recorded = {paths[0]: "0" * 64}
    given, _ = read_sources(paths, tmp_path / "work", recorded=recorded)
    assert {s.path: s.sha256 for s in given}[paths[0]] == "0" * 64  # the record, not re-hashed
