"""`trialship deid` on generated files: a clean tree, a report, receipts that verify."""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from deid_samples import PHI, STUDY, Cli, instance, write
from pydicom.data import get_testdata_files

from trialship.cli import deid as deid_cli
from trialship.cli.deid import MAX_DEFAULT_JOBS, default_jobs


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.dcm"))


def _phi_bytes() -> list[bytes]:
    values = [PHI["patient_id"], PHI["accession"], PHI["birth_date"], "Smithson", "Johanna"]
    values += ["Springfield", "RP778899", STUDY]
    return [value.encode() for value in values]


def test_a_folder_is_deidentified_into_a_tree_without_phi(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for number in range(1, 4):
        write(instance(number), src / f"Smithson_{number}.dcm")
    out = tmp_path / "out"
    result = cli.deid(str(src), out=out)
    assert result.exit_code == 0, result.output
    files = _outputs(out)
    assert [p.relative_to(out).as_posix() for p in files] == [
        f"ACM-0001/BL/S0003/I{n:05d}.dcm" for n in range(1, 4)
    ]
    for path in files:
        data = path.read_bytes()
        assert data[:128] == b"\0" * 128
        for value in _phi_bytes():
            assert value.lower() not in data.lower(), value
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.ClinicalTrialSponsorName == "Acme Oncology"
        assert ds.ClinicalTrialSubjectID == "ACM-0001"
        assert ds.ClinicalTrialSiteID == "S01"
        assert ds.InstitutionName == "S01"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PixelData == b"\x10\x00" * 64
    report = json.loads((out / "deid-report.json").read_text())
    assert report["summary"] == {"inputs": 3, "deidentified": 3}
    assert {entry["status"] for entry in report["inputs"]} == {"deidentified"}
    assert "MRN4711001" not in json.dumps(report)
    # Each file's attribute report, by tag and path (files alike share one)
    assert {entry["report"] for entry in report["inputs"]} == {0}
    (entries,) = report["reports"]
    actions = {entry["keyword"]: entry for entry in entries}
    assert actions["PatientBirthDate"]["action"] == "emptied"
    assert actions["PatientName"] == {
        "tag": "(0010,0010)",
        "keyword": "PatientName",
        "path": "PatientName",
        "action": "replaced",
        "detail": "trial subject ID",
    }
    assert actions["StudyInstanceUID"]["action"] == "remapped"
    assert not set(_phi_bytes()) & {v.encode() for e in entries for v in e.values()}
    assert sorted(p.name for p in (out / "receipts").iterdir()) == ["ACM-0001_BL_1.json"]
    assert not list(out.glob(".trialship-partial-*"))


def test_receipts_verify_and_fail_after_tampering(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    out = tmp_path / "out"
    assert cli.deid(str(tmp_path / "src"), out=out).exit_code == 0
    receipt = out / "receipts" / "ACM-0001_BL_1.json"
    ok = cli("receipt", "verify", str(receipt), "--files", str(out))
    assert ok.exit_code == 0, ok.output
    pub = cli.data / "receipt_ed25519.pub.pem"
    assert (cli.data / "receipt_ed25519.pem").stat().st_mode & 0o777 == 0o600
    assert cli("receipt", "verify", str(receipt), "--public-key", str(pub)).exit_code == 0
    output = next(iter(_outputs(out)))
    output.write_bytes(output.read_bytes() + b"\0\0")
    changed = cli("receipt", "verify", str(receipt), "--files", str(out))
    assert changed.exit_code == 1 and "hash mismatch" in changed.output
    document = json.loads(receipt.read_text())
    document["payload"]["profile"]["name"] = "other"
    receipt.write_text(json.dumps(document))
    forged = cli("receipt", "verify", str(receipt))
    assert forged.exit_code == 1 and "signature" in forged.output


def test_the_receipt_claims_only_the_options_applied(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    text = cli.profile.read_text().replace("options = [", 'options = ["clean_pixel_data", ')
    cli.profile.write_text(text)
    out = tmp_path / "out"
    assert cli.deid(str(tmp_path / "src"), out=out).exit_code == 0
    payload = json.loads((out / "receipts" / "ACM-0001_BL_1.json").read_text())["payload"]
    # No pixel step runs here: like the file's DeidentificationMethodCodeSequence, the receipt
    # does not claim Clean Pixel Data; the profile's own list says it was asked for.
    assert payload["options"] == ["clean_descriptors", "retain_longitudinal_modified_dates"]
    assert "clean_pixel_data" in payload["extra"]["profile_options"]["named"]
    (output,) = _outputs(out)
    codes = [item.CodeValue for item in pydicom.dcmread(output).DeidentificationMethodCodeSequence]
    assert "113101" not in codes


def test_uids_are_stable_across_runs_and_jobs(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for number in range(1, 7):
        write(instance(number, series=number % 2 + 1), src / f"{number}.dcm")
    runs = {}
    for name, jobs in (("one", ["1"]), ("again", ["1"]), ("two", ["2"]), ("default", [])):
        out = tmp_path / name
        assert cli.deid(str(src), *(["--jobs", *jobs] if jobs else []), out=out).exit_code == 0
        runs[name] = {p.relative_to(out).as_posix(): p.read_bytes() for p in _outputs(out)}
    assert runs["one"] == runs["again"] == runs["two"] == runs["default"]
    assert len(runs["one"]) == 6


def test_jobs_default_to_one_per_usable_core_and_at_most_eight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert default_jobs() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert default_jobs() == MAX_DEFAULT_JOBS == 8


def test_the_terminal_progress_bar_runs_no_thread_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker processes are forked while the bar is up: no other thread may hold a lock.
    started: list[set[threading.Thread]] = []

    def fake_run(run: object, progress: Any = None) -> str:
        for _ in range(3):
            progress(None)
            started.append(set(threading.enumerate()) - before)
        return "done"

    monkeypatch.setattr(deid_cli.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(deid_cli, "run_deid", fake_run)
    before = set(threading.enumerate())
    assert deid_cli._run_with_progress(object()) == "done"  # type: ignore[arg-type]
    assert started == [set(), set(), set()]


def test_map_matches_by_accession_then_patient_id(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(instance(1, accession="ACC1", patient_id="P1", study="1.2.3.41"), src / "a.dcm")
    write(instance(2, accession="ACC2", patient_id="P2", study="1.2.3.42"), src / "b.dcm")
    write(instance(3, accession="ACC3", patient_id="P3", study="1.2.3.43"), src / "c.dcm")
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        "patient_id,subject_id,site_id,site_name,timepoint_id,timepoint_description,"
        "accession_number\n"
        "P-OTHER,SUBJ-A,S01,Site One,BL,Baseline,ACC1\n"
        "P2,SUBJ-B,S02,Site Two,W12,Week 12,\n"
    )
    out = tmp_path / "out"
    result = cli.deid(str(src), "--map", str(mapping), out=out, subject=False)
    assert result.exit_code == 3, result.output
    report = json.loads((out / "deid-report.json").read_text())
    status = {Path(e["input"]).name: e for e in report["inputs"]}
    assert status["a.dcm"]["output"].startswith("SUBJ-A/BL/")
    assert status["b.dcm"]["output"].startswith("SUBJ-B/W12/")
    assert status["c.dcm"]["status"] == "rejected"
    assert "no row of the map" in status["c.dcm"]["reason"]
    assert "no row of the map" in result.output  # one line on stderr (mixed in by CliRunner)
    assert pydicom.dcmread(out / status["b.dcm"]["output"]).ClinicalTrialSiteName == "Site Two"


def test_two_subjects_in_one_study_are_refused(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(instance(1, patient_id="P1", study="1.2.3.41"), src / "a.dcm")
    write(instance(2, patient_id="P2", study="1.2.3.41"), src / "b.dcm")
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        "patient_id,subject_id,site_id,site_name,timepoint_id,timepoint_description,"
        "accession_number\nP1,SUBJ-A,S01,,BL,,\nP2,SUBJ-B,S01,,BL,,\n"
    )
    out = tmp_path / "out"
    result = cli.deid(str(src), "--map", str(mapping), "--jobs", "1", out=out, subject=False)
    assert result.exit_code == 3, result.output
    status = {
        Path(e["input"]).name: e
        for e in json.loads((out / "deid-report.json").read_text())["inputs"]
    }
    assert status["a.dcm"]["output"].startswith("SUBJ-A/")
    assert status["b.dcm"]["status"] == "rejected"
    assert status["b.dcm"]["reason"].startswith("its study holds files of another subject")
    assert len(_outputs(out)) == 1


def test_usage_and_profile_errors_exit_2_naming_the_key(cli: Cli, tmp_path: Path) -> None:
    write(instance(1), tmp_path / "src" / "a.dcm")
    out = tmp_path / "out"
    neither = cli("deid", str(tmp_path / "src"), "--out", str(out), "--profile", str(cli.profile))
    assert neither.exit_code == 2
    cli.profile.write_text(cli.profile.read_text().replace('"remove"', '"sometimes"'))
    bad = cli.deid(str(tmp_path / "src"), out=out)
    assert bad.exit_code == 2 and "deid.private_tags" in bad.output
    cli.profile.write_text('[trial]\nprotocol_id = "X"\n[deid]\nuid_secret = "s"\n')
    missing = cli.deid(str(tmp_path / "src"), out=out)
    assert missing.exit_code == 2 and "trial.sponsor_name" in missing.output


def test_pydicom_test_files_are_deidentified_or_rejected_with_a_reason(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for index, name in enumerate(sorted(get_testdata_files())):
        path = Path(name)
        if path.is_file() and path.suffix.lower() in {".dcm", ""}:
            os.symlink(path, src / f"{index:03d}_{path.name}")
    out = tmp_path / "out"
    result = cli.deid(str(src), "--jobs", "2", out=out)
    assert result.exit_code in (0, 3), result.output
    report = json.loads((out / "deid-report.json").read_text())
    done = [e for e in report["inputs"] if e["status"] == "deidentified"]
    assert len(done) > 80
    assert all(e.get("reason") for e in report["inputs"] if e["status"] != "deidentified")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in done:
            ds = pydicom.dcmread(out / entry["output"], stop_before_pixels=True)
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.ClinicalTrialProtocolID == "ACM-301"


def test_the_run_leaves_no_original_value_in_the_engines_caches(cli: Cli, tmp_path: Path) -> None:
    from trialship.deid.scrub import scrubber_for
    from trialship.deid.uids import remap_uid

    src = tmp_path / "src"
    write(instance(1), src / "one.dcm")
    result = cli.deid(str(src), out=tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert scrubber_for.cache_info().currsize == 0
    assert remap_uid.cache_info().currsize == 0


@pytest.mark.parametrize("jobs", [1, 2])
def test_inputs_refused_on_sight_keep_their_place_among_the_processed(
    tmp_path: Path, jobs: int
) -> None:
    from trialship.deid import parse_profile
    from trialship.services.deid_files import Assignment, DeidRun, Outcome, run_deid
    from trialship.signing import load_or_create_signing_key

    src = tmp_path / "src"
    for number in range(1, 10):
        write(instance(number), src / f"a{number}.dcm")
    os.mkfifo(src / "a5x.fifo")  # listed between a5 and a6, refused as not a regular file
    seen: list[Outcome] = []
    result = run_deid(
        DeidRun(
            sources=(src,),
            out=tmp_path / "out",
            profile=parse_profile(
                '[trial]\nsponsor_name = "S"\nprotocol_id = "P-1"\n\n'
                '[deid]\nname = "t"\nuid_secret = "secret-0123456789abcdef"\n'
            ),
            signing_key=load_or_create_signing_key(tmp_path / "key"),
            assign=Assignment(subject_id="S-1", timepoint_id="BL"),
            jobs=jobs,
        ),
        progress=seen.append,
    )
    labels = [Path(outcome.label).name for outcome in result.outcomes]
    assert labels == [f"a{n}.dcm" for n in range(1, 6)] + ["a5x.fifo"] + [
        f"a{n}.dcm" for n in range(6, 10)
    ]
    assert [outcome.status for outcome in result.outcomes].count("rejected") == 1
    assert result.outcomes[5].reason == "not a regular file"
    assert sorted(id(outcome) for outcome in seen) == sorted(id(o) for o in result.outcomes)
