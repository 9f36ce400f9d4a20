"""`trialship media build` end to end: real images, real DICOMDIR checks, real label text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydicom
from build_samples import trial_exams, write_huge_sparse, write_image
from conftest import Run
from disc_checks import dciodvfy_errors, extract, pdf_text, volume_id
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit


def test_a_trial_folder_becomes_one_checked_cd_with_label_and_index(
    run: Run, trial_folder: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    out = tmp_path / "out"
    result = run("media", "build", str(trial_folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Load 1 blank CD-R 80 min disc." in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "DISC001-label.pdf",
        "DISC001.iso",
        "discs.json",
    ]

    iso = out / "DISC001.iso"
    assert volume_id(tools, iso) == "ACME_301_D001"
    disc = extract(tools, iso, tmp_path / "disc")
    assert dciodvfy_errors(tools, disc / "DICOMDIR") == []
    readme = (disc / "README.TXT").read_text()
    for expected in ("ACME 301 Phase III", "SITE07", "S001, S002", "BASELINE, WEEK12", "1 of 1"):
        assert expected in readme
    assert "Patient Identity Removed (0012,0062) = YES" in readme
    assert "open the DICOMDIR" in readme

    label = pdf_text(tools, out / "DISC001-label.pdf")
    for expected in ("S001", "BASELINE", "Disc 1 of 1", "De-identified", "SITE07"):
        assert expected in label

    index = json.loads((out / "discs.json").read_text())
    assert index["trial"] == {"protocol_id": "ACME-301", "protocol_name": "ACME 301 Phase III"}
    [entry] = index["discs"]
    assert entry["medium"] == "cd80" and entry["capacity_bytes"] == 360_000 * 2048
    assert entry["image_bytes"] == iso.stat().st_size
    assert 0 < entry["fill_percent"] < 1
    assert len(entry["exams"]) == 4 and len(entry["files"]) == 24
    first = entry["exams"][0]
    assert (first["subject"], first["time_point"], first["date"], first["modality"]) == (
        "S001",
        "BASELINE",
        "2024-01-05",
        "CT",
    )
    for row in entry["files"]:
        on_disc = disc / row["file_id"]
        assert on_disc.stat().st_size == row["size"]
        assert hashlib.sha256(on_disc.read_bytes()).hexdigest() == row["sha256"]


def test_one_disc_per_subject(
    run: Run, trial_folder: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    out = tmp_path / "out"
    result = run("media", "build", str(trial_folder), "--out", str(out), "--per", "subject")
    assert result.exit_code == 0, result.output
    assert "Load 2 blank CD-R 80 min discs." in result.output
    index = json.loads((out / "discs.json").read_text())
    assert [{e["subject"] for e in d["exams"]} for d in index["discs"]] == [{"S001"}, {"S002"}]
    assert volume_id(tools, out / "DISC002.iso") == "ACME_301_D002"
    label = pdf_text(tools, out / "DISC002-label.pdf")
    assert "Disc 2 of 2" in label and "S002" in label and "S001" not in label


def test_an_identified_file_is_refused_by_name_unless_allowed(
    run: Run, trial_folder: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    exam = trial_exams()[0]
    identified = write_image(trial_folder / "stray.dcm", exam, 1, 1, identity_removed="NO")
    out = tmp_path / "out"
    refused = run("media", "build", str(trial_folder), "--out", str(out))
    assert refused.exit_code == 2
    assert str(identified) in refused.output and "--allow-identified" in refused.output
    assert not out.exists() or not any(out.glob("DISC*"))

    allowed = run("media", "build", str(trial_folder), "--out", str(out), "--allow-identified")
    assert allowed.exit_code == 0, allowed.output
    disc = extract(tools, out / "DISC001.iso", tmp_path / "disc")
    assert "NOT marked de-identified" in (disc / "README.TXT").read_text()
    assert "De-identified" not in pdf_text(tools, out / "DISC001-label.pdf")


def test_a_compressed_file_is_refused_for_cd_and_goes_on_dvd(
    run: Run, trial_folder: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    exam = trial_exams()[0]
    write_image(trial_folder / "jpeg.dcm", exam, 1, 1, transfer_syntax=JPEGBaseline8Bit)
    out = tmp_path / "out"
    refused = run("media", "build", str(trial_folder), "--out", str(out), "--media", "cd80")
    assert refused.exit_code == 2
    assert "compressed" in refused.output and "--media dvd" in refused.output

    dvd = run("media", "build", str(trial_folder), "--out", str(out), "--media", "dvd")
    assert dvd.exit_code == 0, dvd.output
    assert "Load 1 blank DVD+R 4.7 GB disc." in dvd.output
    assert json.loads((out / "discs.json").read_text())["discs"][0]["medium"] == "dvd"
    disc = extract(tools, out / "DISC001.iso", tmp_path / "disc")
    assert dciodvfy_errors(tools, disc / "DICOMDIR") == []

    auto = run("media", "build", str(trial_folder), "--out", str(tmp_path / "auto"))
    assert auto.exit_code == 0, auto.output
    assert "DVD" in auto.output


def test_implicit_vr_files_are_rewritten_for_cd(
    run: Run, tmp_path: Path, tools: dict[str, str]
) -> None:
    source = tmp_path / "implicit"
    source.mkdir()
    exam = trial_exams()[0]
    for i in (1, 2, 3):
        write_image(source / f"{i}.dcm", exam, 1, i, transfer_syntax=ImplicitVRLittleEndian)
    out = tmp_path / "out"
    result = run("media", "build", str(source), "--out", str(out), "--media", "cd74")
    assert result.exit_code == 0, result.output
    assert "Rewrote 3 file(s) as Explicit VR Little Endian" in result.output
    disc = extract(tools, out / "DISC001.iso", tmp_path / "disc")
    assert dciodvfy_errors(tools, disc / "DICOMDIR") == []
    for row in json.loads((out / "discs.json").read_text())["discs"][0]["files"]:
        ds = pydicom.dcmread(disc / row["file_id"])
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert not any(p.name.startswith(".trialship") for p in out.iterdir())


def test_an_exam_too_large_for_the_medium_is_named_with_its_size(
    run: Run, trial_folder: Path, tmp_path: Path
) -> None:
    exam = trial_exams()[0]
    write_huge_sparse(trial_folder / "huge.dcm", exam, 700_000_000)
    out = tmp_path / "out"
    result = run("media", "build", str(trial_folder), "--out", str(out), "--media", "cd74")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: exam S001 BASELINE 2024-01-05 CT")
    assert "700.0 MB" in line and "CD-R 74 min" in line
    assert not any(out.glob("DISC*"))


def test_a_failed_rebuild_leaves_no_index(run: Run, trial_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("media", "build", str(trial_folder), "--out", str(out)).exit_code == 0
    assert (out / "discs.json").exists()
    exam = trial_exams()[0]
    write_image(trial_folder / "jpeg.dcm", exam, 1, 1, transfer_syntax=JPEGBaseline8Bit)
    failed = run("media", "build", str(trial_folder), "--out", str(out), "--media", "cd80")
    assert failed.exit_code == 2
    assert not (out / "discs.json").exists()


def test_no_inputs_is_a_clear_error(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("media", "build", str(empty), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "no files found" in result.output
    missing = run("media", "build", "--out", str(tmp_path / "out"))
    assert missing.exit_code == 2
    assert "at least one folder or file" in missing.output


def test_a_fileset_prefix_names_the_volume(
    run: Run, trial_folder: Path, tmp_path: Path, tools: dict[str, str]
) -> None:
    out = tmp_path / "out"
    result = run(
        "media", "build", str(trial_folder), "--out", str(out), "--fileset-prefix", "acme 301/b"
    )
    assert result.exit_code == 0, result.output
    assert volume_id(tools, out / "DISC001.iso") == "ACME_301_B_D001"
