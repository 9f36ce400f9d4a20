"""`trialship deid` keeps every run apart: an --out of its own, one folder per subject, time
point and series, and the subject's values checked as the DICOM attributes they become."""

from __future__ import annotations

import fcntl
import json
import os
import zipfile
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from deid_samples import Cli, instance, write
from pydicom.dataset import Dataset

MAP_HEADER = (
    "patient_id,subject_id,site_id,site_name,timepoint_id,timepoint_description,accession_number\n"
)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _report(out: Path) -> list[dict[str, str]]:
    inputs: list[dict[str, str]] = json.loads((out / "deid-report.json").read_text())["inputs"]
    return inputs


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.dcm"))}


def _bytes(ds: Dataset, tmp: Path) -> bytes:
    path = write(ds, tmp / "member.dcm")
    data = path.read_bytes()
    path.unlink()
    return data


def test_broken_and_looping_links_are_rejected_and_the_run_goes_on(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write(instance(1), src / "a.dcm")
    (src / "broken.dcm").symlink_to("/nonexistent/file.dcm")
    (src / "loop.dcm").symlink_to(src / "loop.dcm")
    out = tmp_path / "out"
    result = cli.deid(str(src), out=out)
    assert result.exit_code == 3, result.output
    reasons = {Path(e["input"]).name: e.get("reason", "") for e in _report(out)}
    assert reasons["broken.dcm"] == "cannot read: broken symbolic link"
    assert reasons["loop.dcm"].startswith("cannot read: ")
    assert f"rejected: {src / 'broken.dcm'}: cannot read: broken symbolic link" in result.output
    assert len(_tree(out)) == 1


def test_a_second_run_into_the_same_out_is_refused_and_the_first_still_verifies(
    cli: Cli, tmp_path: Path
) -> None:
    write(instance(1), tmp_path / "one" / "a.dcm")
    write(instance(2), tmp_path / "two" / "b.dcm")
    out = tmp_path / "out"
    assert cli.deid(str(tmp_path / "one"), out=out).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = cli.deid(str(tmp_path / "two"), out=out)
    assert again.exit_code == 2
    assert again.output.count("\n") == 1 and str(out) in again.output, again.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    receipt = out / "receipts" / "ACM-0001_BL_1.json"
    assert cli("receipt", "verify", str(receipt), "--files", str(out)).exit_code == 0


def test_a_foreign_file_in_out_refuses_it(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli.deid(str(tmp_path / "src"), out=out)
    assert result.exit_code == 2 and "notes.txt" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_empty_out_or_one_left_with_only_a_killed_runs_scratch_is_used(
    cli: Cli, tmp_path: Path
) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.deid(str(tmp_path / "src"), out=empty).exit_code == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".trialship-partial-00000000-dead.part").write_bytes(b"half")
    (killed / ".trialship-partial-dead.zipentry").write_bytes(b"half")
    result = cli.deid(str(tmp_path / "src"), out=killed)
    assert result.exit_code == 0, result.output
    assert _tree(killed) == _tree(empty)
    assert not list(killed.glob(".trialship-partial-*"))


def test_a_run_removes_no_folder(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Removing a folder frees its block: on ext4 mounted with discard and no journal that
    # waits behind every write queued to the disk (0.1-1 s at the end of each run here).
    write(instance(1), tmp_path / "src" / "a.dcm")
    write(instance(2), tmp_path / "src" / "b.dcm")
    removed: list[str] = []
    real_rmdir = os.rmdir

    def rmdir(path: str, *args: object, **kwargs: object) -> None:
        removed.append(str(path))
        real_rmdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rmdir", rmdir)
    result = cli.deid(str(tmp_path / "src"), out=tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert removed == []
    assert not list((tmp_path / "out").glob(".trialship-partial-*"))


def test_an_out_another_run_is_writing_into_is_refused(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    out = tmp_path / "out"
    out.mkdir()
    scratch = out / ".trialship-partial-00000000-live.part"
    scratch.write_bytes(b"half")
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a run in progress holds it
        result = cli.deid(str(tmp_path / "src"), out=out)
    finally:
        os.close(fd)
    assert result.exit_code == 2 and "another run is writing into" in result.output
    assert scratch.read_bytes() == b"half"  # not the refused run's to remove


@pytest.mark.parametrize(
    ("source", "out", "words"),
    [("src", "src/d0/out", "lies inside the source"), ("out/src", "out", "lies inside")],
)
def test_an_out_inside_a_source_or_a_source_inside_out_is_refused(
    cli: Cli, tmp_path: Path, source: str, out: str, words: str
) -> None:
    write(instance(1), tmp_path / source / "d0" / "a.dcm")
    result = cli.deid(str(tmp_path / source), out=tmp_path / out)
    assert result.exit_code == 2 and words in result.output
    assert str(tmp_path / source) in result.output and str(tmp_path / out) in result.output
    written = [p.name for p in (tmp_path / out).rglob("*") if p.is_file()]
    assert written in ([], ["a.dcm"])  # (nothing but the source that lies there)


def test_zip_entries_with_one_name_are_each_deidentified_from_their_own_bytes(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with pytest.warns(UserWarning), zipfile.ZipFile(src / "dup.zip", "w") as archive:
        archive.writestr("scan.dcm", _bytes(instance(1), tmp_path))
        archive.writestr("scan.dcm", _bytes(instance(2), tmp_path))
        archive.writestr("scan.dcm", _bytes(instance(2, pixels=b"\x30\x00" * 64), tmp_path))
    out = tmp_path / "out"
    result = cli.deid(str(src), out=out)
    assert result.exit_code == 3, result.output
    entries = _report(out)
    assert [e["status"] for e in entries] == ["deidentified", "deidentified", "rejected"]
    assert "same SOP Instance UID" in entries[2]["reason"]
    numbers = sorted(pydicom.dcmread(out / e["output"]).InstanceNumber for e in entries[:2])
    assert numbers == [1, 2]


def _map_run(cli: Cli, tmp_path: Path, rows: list[tuple[str, str]], jobs: str) -> Path:
    src = tmp_path / "src"
    for n in range(1, len(rows) + 1):
        ds = instance(n, patient_id=f"P{n}", accession=f"ACC{n}", study=f"1.2.3.{n}")
        write(ds, src / f"{n}.dcm")
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        MAP_HEADER
        + "".join(
            f'P{n},"{subject}",S01,,"{timepoint}",,ACC{n}\n'
            for n, (subject, timepoint) in enumerate(rows, start=1)
        )
    )
    out = tmp_path / f"out{jobs}"
    result = cli.deid(str(src), "--map", str(mapping), "--jobs", jobs, out=out, subject=False)
    assert result.exit_code == 0, result.output
    return out


def test_ids_that_sanitise_or_fold_alike_get_folders_of_their_own(cli: Cli, tmp_path: Path) -> None:
    rows = [
        ("SUBJ 1", "BL"),
        ("SUBJ/1", "BL"),
        ("SUBJ_1", "BL"),
        ("subj_1", "BL"),
        ("CON", "BL"),
        ("S-2", "W 12"),
        ("S-2", "W/12"),
        ("S-3", ""),
        ("S-3", "NO_TIMEPOINT"),
    ]
    out = _map_run(cli, tmp_path, rows, "1")
    by_folder: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for relative in _tree(out):
        ds = pydicom.dcmread(out / relative)
        folder = relative.rsplit("/", 2)[0].casefold()
        by_folder[folder].add((ds.ClinicalTrialSubjectID, ds.get("ClinicalTrialTimePointID", "")))
    assert len(by_folder) == len(rows) and all(len(ids) == 1 for ids in by_folder.values())
    folders = sorted(by_folder)
    assert "subj_1/bl" in folders and "s-3/no_timepoint" in folders  # safe IDs stay as they are
    assert all(len(part) <= 64 and part.isascii() for f in folders for part in f.split("/"))
    assert not any(f.split("/")[0] == "con" for f in folders)  # a Windows device name
    receipts = sorted(p.name.casefold() for p in (out / "receipts").iterdir())
    assert len(set(receipts)) == len(rows)
    assert _tree(_map_run(cli, tmp_path, rows, "2")) == _tree(out)  # stable names, any --jobs


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--subject", "SUB\\001", "backslash"),
        ("--subject", "S" * 80, "DICOM LO allows 64"),
        ("--subject", "SUB^001", "must not contain ^ or ="),
        ("--site", "S\\1", "backslash"),
        ("--site-name", "N" * 65, "DICOM LO allows 64"),
        ("--timepoint", "T\\1", "backslash"),
        ("--timepoint", "T\x01", "control characters"),
    ],
)
def test_subject_options_are_checked_as_the_attributes_they_become(
    cli: Cli, tmp_path: Path, option: str, value: str, words: str
) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    out = tmp_path / "out"
    values = {"--subject": "ACM-0001", "--site": "S01", "--site-name": "", "--timepoint": "BL"}
    values[option] = value
    args = [arg for pair in values.items() for arg in pair]
    profile = ["--profile", str(cli.profile)]
    result = cli("deid", str(tmp_path / "src"), "--out", str(out), *profile, *args)
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {option}: ") and words in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("subject_id", "A\\B", "backslash"),
        ("subject_id", "", "is required"),
        ("subject_id", "A=B", "must not contain ^ or ="),
        ("site_id", "S" * 65, "LO allows 64"),
        ("site_name", "N\\M", "backslash"),
        ("timepoint_id", "T" * 65, "LO allows 64"),
        ("timepoint_description", "D" * 1025, "ST allows 1024"),
    ],
)
def test_map_values_are_checked_naming_line_and_column(
    cli: Cli, tmp_path: Path, column: str, value: str, words: str
) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    row = {"patient_id": "P9", "subject_id": "SUBJ-9", "site_id": "S01", "site_name": ""}
    row |= {"timepoint_id": "BL", "timepoint_description": "Baseline", "accession_number": ""}
    row[column] = value
    mapping = tmp_path / "map.csv"
    mapping.write_text(MAP_HEADER + "P1,SUBJ-1,S01,,BL,,\n" + ",".join(row.values()) + "\n")
    result = cli.deid(
        str(tmp_path / "src"), "--map", str(mapping), out=tmp_path / "o", subject=False
    )
    assert result.exit_code == 2
    assert f"map.csv: line 3: {column}: " in result.output and words in result.output


def test_a_replacement_that_would_not_fit_its_attribute_is_refused_before_reading(
    cli: Cli, tmp_path: Path
) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    text = cli.profile.read_text().replace(
        'InstitutionName = "{site_id}"',
        'InstitutionName = "{site_id}"\nStationName = "ST-{subject_id}"',
    )
    cli.profile.write_text(text)
    mapping = tmp_path / "map.csv"
    mapping.write_text(MAP_HEADER + "P1,SUBJ-1,S01,,BL,,\nP2,SUBJ-22,S01,,BL,,\n")
    out = tmp_path / "out"
    result = cli.deid(str(tmp_path / "src"), "--map", str(mapping), out=out, subject=False)
    # StationName is SH: "ST-SUBJ-22" fits 16 characters, and so does SUBJ-1's.
    assert result.exit_code == 3, result.output  # (a.dcm's patient is in no row)
    mapping.write_text(MAP_HEADER + "P1,SUBJ-1,S01,,BL,,\nP2,SUBJ-0000000022,S01,,BL,,\n")
    result = cli.deid(
        str(tmp_path / "src"), "--map", str(mapping), out=tmp_path / "o2", subject=False
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: subject SUBJ-0000000022: deid.replace.StationName: gives 18 characters "
        "('ST-SUBJ-0000000022'); DICOM SH allows 16\n"
    )
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ('StationName = "a-very-long-station-name"', "gives 24 characters"),
        ('StationName = "A\\\\B"', "a backslash would split it into two values"),
        ('BodyPartExamined = "{site_id}"', "DICOM CS allows upper-case letters"),
    ],
)
def test_replacements_are_checked_as_the_vr_they_are_written_as(
    cli: Cli, tmp_path: Path, template: str, words: str
) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    text = cli.profile.read_text().replace('InstitutionName = "{site_id}"', template)
    cli.profile.write_text(text)
    result = cli(
        "deid",
        str(tmp_path / "src"),
        "--out",
        str(tmp_path / "o"),
        "--profile",
        str(cli.profile),
        "--subject",
        "ACM-0001",
        "--site",
        "s01",
    )
    assert result.exit_code == 2 and "deid.replace." in result.output
    assert words in result.output, result.output


def test_both_longitudinal_date_options_are_a_profile_error(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    cli.profile.write_text(
        cli.profile.read_text().replace(
            '"clean_descriptors"]', '"clean_descriptors", "retain_longitudinal_full_dates"]'
        )
    )
    result = cli.deid(str(tmp_path / "src"), out=tmp_path / "out")
    assert result.exit_code == 2 and "deid.options" in result.output
    assert not (tmp_path / "out").exists()


def test_each_series_gets_a_folder_of_its_own_whatever_its_number(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    studies = ("1.2.826.0.1.3680043.99.7.1", "1.2.826.0.1.3680043.99.7.2")
    n = 0
    for study in studies:
        for series in (1, 2, 3):
            for _ in range(3):
                n += 1
                ds = instance(n, study=study, series=series)
                ds.SeriesNumber = 1 if series < 3 else 7  # two series numbered alike per study
                ds.InstanceNumber = 1 + n % 3
                write(ds, src / f"{n:02d}.dcm")
    runs = {}
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"out{jobs}"
        assert cli.deid(str(src), "--jobs", jobs, out=out).exit_code == 0
        runs[jobs] = _tree(out)
    assert runs["1"] == runs["2"] == runs["3"]
    series_of: dict[str, set[str]] = defaultdict(set)
    for relative in runs["1"]:
        ds = pydicom.dcmread(tmp_path / "out1" / relative)
        series_of[relative.rsplit("/", 1)[0]].add(ds.SeriesInstanceUID)
    assert sorted(series_of) == [
        f"ACM-0001/BL/{name}"
        for name in ("S0001", "S0001_2", "S0001_3", "S0001_4", "S0007", "S0007_2")
    ]
    assert all(len(uids) == 1 for uids in series_of.values())
    assert len(runs["1"]) == 18 and all("_" not in Path(r).name for r in runs["1"])
