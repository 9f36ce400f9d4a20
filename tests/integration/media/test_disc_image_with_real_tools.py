"""A disc built from synthetic exams, checked by the tools a sponsor's reader would trust."""

from __future__ import annotations

import errno
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from trialship.media import iso as iso_module
from trialship.media.build import BuiltDisc, DiscFile, build_disc
from trialship.media.capacity import Medium
from trialship.media.dicomdir import entry_from_file, number_entries
from trialship.media.errors import MediaError
from trialship.media.manifest import parse_manifest
from trialship.media.verify import verify_image

FILESET_ID = "TRIAL01_DISC01"
README = "Trial TRIAL01\nDe-identified imaging. Open DICOMDIR with any DICOM viewer.\n"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def disc_files(paths: list[Path]) -> list[DiscFile]:
    by_uid = {}
    entries = []
    for path in paths:
        entry = entry_from_file(path)
        by_uid[entry.sop_instance_uid] = path
        entries.append(entry)
    return [
        DiscFile(str(by_uid[e.sop_instance_uid]), e.file_id, e)
        for e in number_entries(entries)
        if e.file_id is not None
    ]


def build(paths: list[Path], out: Path, medium: Medium = Medium.CD80) -> BuiltDisc:
    return build_disc(
        disc_files(paths),
        out,
        fileset_id=FILESET_ID,
        fileset_uid=generate_uid(),
        medium=medium,
        readme_text=README,
    )


def extract(image: Path, folder: Path) -> Path:
    result = run("osirrox", "-indev", image, "-extract", "/", folder)
    assert result.returncode == 0, result.stderr
    run("chmod", "-R", "u+w", folder)  # osirrox extracts read-only (peers.md section 4)
    return folder


@pytest.fixture
def built(dicom_files: list[Path], tmp_path: Path, tools: dict[str, str]) -> BuiltDisc:
    return build(dicom_files, tmp_path / "out" / "disc1.iso")


def test_dicomdir_on_the_disc_passes_dciodvfy(built: BuiltDisc, tmp_path: Path) -> None:
    folder = extract(built.path, tmp_path / "x")
    result = run("dciodvfy", folder / "DICOMDIR")
    report = result.stderr + result.stdout
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == [], report
    assert result.returncode == 0, report


def test_referenced_files_are_consistent_for_dcentvfy(built: BuiltDisc, tmp_path: Path) -> None:
    folder = extract(built.path, tmp_path / "x")
    files = sorted(p for p in (folder / "DICOM").rglob("*") if p.is_file())
    assert len(files) == 20
    result = run("dcentvfy", *files)
    assert (result.returncode, result.stderr.strip(), result.stdout.strip()) == (0, "", "")


def test_pydicom_loads_the_file_set_with_every_instance(built: BuiltDisc, tmp_path: Path) -> None:
    folder = extract(built.path, tmp_path / "x")
    fs = FileSet(folder / "DICOMDIR")
    assert len(fs) == 20
    assert fs.ID == FILESET_ID
    assert sorted(p for p in fs.find_values("PatientID")) == ["SUBJ001", "SUBJ002"]


def test_isoinfo_shows_the_volume_id_and_level_1_names(built: BuiltDisc) -> None:
    info = run("isoinfo", "-d", "-i", built.path)
    assert f"Volume id: {FILESET_ID}" in info.stdout
    assert "NO Joliet present" in info.stdout
    listing = run("isoinfo", "-l", "-i", built.path).stdout
    for name in ("DICOMDIR.;1", "README.TXT;1", "MANIFEST.CSV;1", "I0000001.;1", "DICOM"):
        assert name in listing


def test_xorriso_checks_every_sector_as_good(built: BuiltDisc) -> None:
    result = run("xorriso", "-indev", built.path, "-check_media", "--")
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "+ good" in report
    assert "- bad" not in report


def test_extracted_files_equal_their_sources_byte_for_byte(
    dicom_files: list[Path], tmp_path: Path, tools: dict[str, str]
) -> None:
    files = disc_files(dicom_files)
    built = build_disc(
        files,
        tmp_path / "disc.iso",
        fileset_id=FILESET_ID,
        fileset_uid=generate_uid(),
        medium=Medium.CD80,
        readme_text=README,
    )
    folder = extract(built.path, tmp_path / "x")
    for f in files:
        assert filecmp.cmp(f.src_path, folder / f.file_id.posix, shallow=False), f.file_id
    assert (folder / "README.TXT").read_bytes() == README.replace("\n", "\r\n").encode()
    rows = parse_manifest((folder / "MANIFEST.CSV").read_bytes())
    assert [r.path for r in rows][:2] == ["DICOMDIR", "README.TXT"]
    assert len(rows) == 22


def test_read_back_detects_a_tampered_image(built: BuiltDisc, tmp_path: Path) -> None:
    verify_image(built.path, medium=Medium.CD80)  # clean image checks against its own manifest
    data = bytearray(built.path.read_bytes())
    # Flip one byte inside the last file's pixel data: the image still parses, the hash differs.
    listing = run("isoinfo", "-l", "-i", built.path).stdout
    assert "I0000004.;1" in listing
    folder = extract(built.path, tmp_path / "x")
    target = (folder / "DICOM/P0000002/S0000001/E0000002/I0000004").read_bytes()
    at = data.find(target)
    assert at > 0
    data[at + len(target) - 1] ^= 0xFF
    tampered = tmp_path / "tampered.iso"
    tampered.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"DICOM/P0000002/S0000001/E0000002/I0000004.*differs"):
        verify_image(tampered, medium=Medium.CD80)


def test_no_space_left_leaves_no_image(
    dicom_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_fp = iso_module.pycdlib.PyCdlib.write_fp

    def write_until_full(self: object, outfp: object, **kwargs: object) -> None:
        outfp.write(b"\0" * 65536)  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iso_module.pycdlib.PyCdlib, "write_fp", write_until_full)
    out = tmp_path / "full" / "disc.iso"
    with pytest.raises(MediaError, match=r"disc\.iso: No space left on device"):
        build(dicom_files, out)
    monkeypatch.setattr(iso_module.pycdlib.PyCdlib, "write_fp", real_write_fp)
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_no_space_on_a_real_tiny_file_system(dicom_files: list[Path], tmp_path: Path) -> None:
    # Mounting needs root, as the test peers do (scripts/test runs as root or with sudo).
    assert os.geteuid() == 0, "this test mounts a tmpfs: run the suite as root"
    # A 64 KiB tmpfs in a private mount namespace: the real ENOSPC path, no monkeypatching.
    # The build runs in a child so the mount never leaks into the test process.
    script = tmp_path / "tiny.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_disc_image_with_real_tools import build\n"
        "from trialship.media.errors import MediaError\n"
        "paths = [Path(p) for p in sys.argv[2:]]\n"
        "out = Path(sys.argv[1]) / 'disc.iso'\n"
        "try:\n"
        "    build(paths, out)\n"
        "except MediaError as exc:\n"
        "    print('MediaError:', exc)\n"
        "print('left:', sorted(p.name for p in out.parent.iterdir()))\n"
    )
    mount = tmp_path / "tiny"
    mount.mkdir()
    shell = (
        f"mount -t tmpfs -o size=64k tmpfs {mount} && "
        f"{sys.executable} {script} {mount} {' '.join(str(p) for p in dicom_files)}"
    )
    result = run("unshare", "-m", "sh", "-c", shell)
    if "mount" in result.stderr and result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the ENOSPC test (needs root): {result.stderr}")
    assert "MediaError: could not write the disc image" in result.stdout, result.stderr
    assert "No space left on device" in result.stdout
    assert "left: []" in result.stdout


def test_estimated_sectors_cover_the_real_image(built: BuiltDisc, dicom_files: list[Path]) -> None:
    from trialship.media.capacity import (
        ISO_FIXED_SECTORS,
        README_ALLOWANCE_SECTORS,
        ExamSize,
        exam_sectors,
    )

    exams = {}
    for path in dicom_files:
        entry = entry_from_file(path)
        exams.setdefault(entry.study_instance_uid, (entry, []))[1].append(path.stat().st_size)
    estimate = ISO_FIXED_SECTORS + README_ALLOWANCE_SECTORS
    for uid, (entry, sizes) in exams.items():
        estimate += exam_sectors(ExamSize(uid, tuple(sizes), entry.patient_id, entry.study_date))
    assert built.bytes <= estimate * 2048


def test_the_same_files_and_timestamp_give_the_same_image_bytes(
    dicom_files: list[Path], tmp_path: Path, tools: dict[str, str]
) -> None:
    files = disc_files(dicom_files)
    stamp = 1_706_788_800.0  # 2024-02-01 12:00:00 UTC

    def image(name: str) -> BuiltDisc:
        return build_disc(
            files,
            tmp_path / name,
            fileset_id=FILESET_ID,
            fileset_uid="2.25.42",
            medium=Medium.CD80,
            readme_text=README,
            timestamp=stamp,
        )

    first, second = image("a.iso"), image("b.iso")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    # ECMA-119 8.4.26: the volume creation date, "YYYYMMDDHHMMSScc" and the UTC offset byte.
    pvd = first.path.read_bytes()[16 * 2048 : 17 * 2048]
    assert pvd[813:830] == b"2024020112000000\x00"
