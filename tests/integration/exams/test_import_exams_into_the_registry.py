"""Importing exams into a trial: matching, grouping, time points, idempotence, the key, receipts."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian
from sqlalchemy import select

from tests.integration.exams.exam_samples import (
    FORBIDDEN,
    PHI,
    SYSTEM,
    exam_instance,
    seed_trial,
    write,
    write_exam,
)
from tests.integration.exams.exam_samples import (
    import_files as run_import,
)
from trialship.app import Runtime
from trialship.deid.receipt import verify_receipt
from trialship.registry.imaging import Instance, KeyEntry, QuarantinedFile
from trialship.registry.models import Exam, ExamState, Trial
from trialship.services import exams
from trialship.services.deid_files import verify_receipt_files
from trialship.services.exam_import import (
    Status,
    choose_timepoint,
    exam_folder,
)
from trialship.signing import load_or_create_signing_key

NOW = dt.datetime(2024, 2, 1, 12, 0)


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)


def all_exams(runtime: Runtime) -> list[Exam]:
    with runtime.db.unit_of_work() as session:
        found = list(session.scalars(select(Exam).order_by(Exam.id)))
        for exam in found:
            _ = exam.subject.subject_id, exam.timepoint
        return found


def reasons(runtime: Runtime) -> list[str]:
    with runtime.db.unit_of_work() as session:
        return list(session.scalars(select(QuarantinedFile.reason)))


def test_files_matched_by_hashed_mrn_and_issuer_become_one_deidentified_exam(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 3)
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("imported") == 3 and not summary.quarantined
    (exam,) = all_exams(runtime)
    assert exam.subject.subject_id == "SUBJ-001"
    assert exam.state == ExamState.DEIDENTIFIED and exam.file_count == 3
    assert exam.timepoint.timepoint_id == "BL" and exam.timepoint_confirmed
    assert exam.study_date == dt.date(2024, 1, 11)
    outputs = sorted((exam_folder(runtime.settings.data_dir, exam)).rglob("*.dcm"))
    assert [
        p.relative_to(exam_folder(runtime.settings.data_dir, exam)).as_posix() for p in outputs
    ] == [
        "S0002/I00001.dcm",
        "S0002/I00002.dcm",
        "S0002/I00003.dcm",
    ]
    ds = pydicom.dcmread(outputs[0])
    assert ds.PatientID == "SUBJ-001" and ds.ClinicalTrialSubjectID == "SUBJ-001"
    assert ds.ClinicalTrialTimePointID == "BL" and ds.ClinicalTrialSiteID == "S01"
    assert ds.ClinicalTrialProtocolID == "ACM-301"
    assert ds.StudyInstanceUID.startswith("2.25.")


def test_outputs_and_names_hold_no_original_identifier(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    run_import(runtime, trial, tmp_path / "in")
    data = runtime.settings.data_dir
    outputs = list((data / "exams").rglob("*"))
    assert outputs
    for path in outputs:
        assert "Kowalczyk" not in str(path) and PHI["patient_id"] not in str(path)
        if path.is_file():
            blob = path.read_bytes()
            for value in [*FORBIDDEN, "1.2.826.0.1.3680043.99.31"]:
                assert value.encode() not in blob, (path, value)


def test_originals_are_kept_in_a_restricted_folder_named_by_hash(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    (source,) = write_exam(tmp_path / "in", 1)
    run_import(runtime, trial, source)
    originals = runtime.settings.data_dir / "originals" / str(trial.id)
    assert originals.stat().st_mode & 0o777 == 0o700
    (stored,) = [p for p in originals.rglob("*.dcm")]
    assert stored.read_bytes() == source.read_bytes()
    with runtime.db.unit_of_work() as session:
        instance = session.scalars(select(Instance)).one()
        assert instance.original_path == stored.relative_to(runtime.settings.data_dir).as_posix()
        assert stored.stem == instance.input_sha256


def test_streamed_and_deflated_files_record_the_hashes_of_their_bytes(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    # The input's SHA-256 is taken once, as the original is stored: these two kinds are not
    # read whole into memory while they are written, nor read again to be hashed.
    big = exam_instance(1, pixels=b"\x20\x01" * (5 << 20))  # 10 MiB: copied in chunks
    big.Rows, big.Columns = 2048, 2560
    deflated = exam_instance(2)
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    sources = [write(big, tmp_path / "in" / "big.dcm"), write(deflated, tmp_path / "in" / "d.dcm")]
    assert run_import(runtime, trial, tmp_path / "in").count("imported") == 2
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        recorded = {i.input_sha256: i for i in session.scalars(select(Instance))}
    assert set(recorded) == {hashlib.sha256(path.read_bytes()).hexdigest() for path in sources}
    for instance in recorded.values():
        output = (data / instance.path).read_bytes()
        assert hashlib.sha256(output).hexdigest() == instance.output_sha256


def test_an_explicit_subject_and_time_point_take_files_without_a_known_mrn(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2, patient_id="OTHER-778", study_date="20240501")
    summary = run_import(runtime, trial, tmp_path / "in", subject_id="SUBJ-002", timepoint_id="W12")
    assert summary.count("imported") == 2
    (exam,) = all_exams(runtime)
    assert exam.subject.subject_id == "SUBJ-002"
    assert exam.timepoint.timepoint_id == "W12" and exam.timepoint_confirmed


def test_unmatched_non_dicom_and_truncated_files_are_quarantined_without_phi(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    write(exam_instance(1, patient_id="UNKNOWN-999"), folder / "unmatched.dcm")
    (folder / "notes.txt").write_text("Kowalczyk called about her scan")
    good = write(exam_instance(2), tmp_path / "good.dcm")
    (folder / "truncated.dcm").write_bytes(good.read_bytes()[:-40])
    (folder / "empty.dcm").write_bytes(b"")
    summary = run_import(runtime, trial, folder)
    assert summary.count("quarantined") == 4 and summary.count("imported") == 0
    found = reasons(runtime)
    assert len(found) == 4
    assert any("no subject of the trial" in r for r in found)
    assert any("not DICOM" in r for r in found)
    assert any("truncated" in r for r in found)
    assert any("empty" in r for r in found)
    for reason in found:
        for value in FORBIDDEN:
            assert value not in reason
    assert all_exams(runtime) == []


def test_the_same_study_imported_later_joins_its_exam_and_other_studies_make_new_ones(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "a", 2)
    run_import(runtime, trial, tmp_path / "a")
    write(exam_instance(3, series=5), tmp_path / "b" / "late.dcm")
    write_exam(tmp_path / "c", 1, study="1.2.826.0.1.3680043.99.31.2", study_date="20240403")
    run_import(runtime, trial, tmp_path / "b", tmp_path / "c")
    first, second = all_exams(runtime)
    assert first.file_count == 3 and second.file_count == 1
    assert second.timepoint.timepoint_id == "W12" and second.timepoint_confirmed
    assert verify_receipt(
        first.receipt, load_or_create_signing_key(runtime.settings.data_dir).public_key()
    )
    assert len(first.receipt["payload"]["outputs"]) == 3


def test_a_study_date_in_no_window_gets_the_nearest_time_point_unconfirmed(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 1, study_date="20240301")  # day 51: BL is day 0, W12 day 84
    run_import(runtime, trial, tmp_path / "in")
    (exam,) = all_exams(runtime)
    assert exam.timepoint.timepoint_id == "W12" and not exam.timepoint_confirmed


def test_overlapping_windows_are_ambiguous_and_left_for_a_coordinator() -> None:
    class TP:
        def __init__(self, code: str, day: int, minus: int, plus: int) -> None:
            self.timepoint_id, self.day_offset, self.window_minus, self.window_plus = (
                code,
                day,
                minus,
                plus,
            )

    a, b = TP("V1", 10, 10, 10), TP("V2", 14, 10, 10)
    base = dt.date(2024, 1, 1)
    chosen, confirmed = choose_timepoint([a, b], base, dt.date(2024, 1, 14))  # type: ignore[list-item]
    assert chosen is b and not confirmed
    chosen, confirmed = choose_timepoint([a, b], base, dt.date(2024, 1, 2))  # type: ignore[list-item]
    assert chosen is a and confirmed
    assert choose_timepoint([a], None, dt.date(2024, 1, 2)) == (None, False)  # type: ignore[list-item]


def test_importing_the_same_files_again_changes_nothing(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 3)
    (tmp_path / "in" / "junk.bin").write_bytes(b"not dicom at all")
    run_import(runtime, trial, tmp_path / "in")
    (before,) = all_exams(runtime)
    files_before = {
        p: p.stat().st_mtime_ns for p in (runtime.settings.data_dir / "exams").rglob("*.dcm")
    }
    again = run_import(runtime, trial, tmp_path / "in")
    assert again.count("skipped") == 3 and again.count("imported") == 0
    (after,) = all_exams(runtime)
    assert after.receipt == before.receipt and after.file_count == 3
    assert len(reasons(runtime)) == 1
    assert {
        p: p.stat().st_mtime_ns for p in (runtime.settings.data_dir / "exams").rglob("*.dcm")
    } == files_before


def test_same_sop_instance_uid_with_different_content_is_quarantined(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write(exam_instance(1), tmp_path / "a" / "one.dcm")
    write(exam_instance(1, pixels=b"\x99\x01" * 64), tmp_path / "b" / "one-changed.dcm")
    run_import(runtime, trial, tmp_path / "a")
    summary = run_import(runtime, trial, tmp_path / "b")
    assert summary.count("quarantined") == 1
    assert "same SOP Instance UID" in summary.quarantined[0].reason
    (exam,) = all_exams(runtime)
    assert exam.file_count == 1


def test_a_leak_quarantines_the_file_and_writes_nothing(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    ds = exam_instance(1)
    # A free-text element the profile keeps, holding the MRN: the leak check must refuse it.
    ds.ImageComments = f"prior of {PHI['patient_id']}"
    with runtime.db.unit_of_work() as session:
        trial.deid_profile = (
            '[deid]\nprivate_tags = "remove"\n[deid.keep]\nkeywords = ["ImageComments"]\n'
        )
        session.merge(trial)
    write(ds, tmp_path / "in" / "leaky.dcm")
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("quarantined") == 1
    assert summary.quarantined[0].reason.startswith("leak check failed")
    assert PHI["patient_id"] not in summary.quarantined[0].reason
    assert not list((runtime.settings.data_dir / "exams").rglob("*.dcm"))
    assert all_exams(runtime) == []


def test_a_replacement_too_long_for_the_subject_quarantines_naming_the_template(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    # (saved as the profile before SUBJ-001 was registered: the save checks those it knows)
    with runtime.db.unit_of_work() as session:
        trial.deid_profile = '[deid]\n[deid.replace]\nStationName = "STATION-{subject_id}-X"\n'
        session.merge(trial)
    write_exam(tmp_path / "in", 1)
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("quarantined") == 1
    assert summary.quarantined[0].reason == (
        "the trial's profile: deid.replace.StationName: gives 18 characters "
        "('STATION-SUBJ-001-X'); DICOM SH allows 16"
    )
    assert all_exams(runtime) == []


def test_key_rows_decrypt_to_the_originals_and_reading_them_is_audited(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    run_import(runtime, trial, tmp_path / "in")
    with runtime.db.unit_of_work() as session:
        stored = session.merge(trial)
        assert all(
            PHI["patient_id"].encode() not in k.original_encrypted
            for k in session.scalars(select(KeyEntry))
        )
        rows = exams.read_key(session, SYSTEM, runtime.vault, stored, runtime.today())
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append((row.original, row.replacement))
    assert by_kind["patient_id"] == [(PHI["patient_id"], "SUBJ-001")]
    assert by_kind["accession_number"][0][0] == PHI["accession"]
    (study,) = by_kind["study_instance_uid"]
    assert study[0] == "1.2.826.0.1.3680043.99.31.1" and study[1].startswith("2.25.")
    assert sorted(o for o, _ in by_kind["sop_instance_uid"]) == [
        "1.2.826.0.1.3680043.99.31.1.2.1",
        "1.2.826.0.1.3680043.99.31.1.2.2",
    ]
    csv_text = exams.key_csv(rows)
    assert csv_text.startswith("subject_id,exam,timepoint_id,kind,original,replacement")


def test_the_receipt_verifies_with_the_instance_key_and_matches_the_files(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    run_import(runtime, trial, tmp_path / "in")
    (exam,) = all_exams(runtime)
    key = load_or_create_signing_key(runtime.settings.data_dir)
    assert verify_receipt(exam.receipt, key.public_key())
    assert verify_receipt_files(exam.receipt, exam_folder(runtime.settings.data_dir, exam)) is None
    assert exam.receipt["payload"]["extra"]["subject_id"] == "SUBJ-001"


def test_pydicom_bundled_files_import_for_an_explicit_subject_or_fail_closed(
    runtime: Runtime, trial: Trial
) -> None:
    sources = [Path(get_testdata_file("CT_small.dcm")), Path(get_testdata_file("MR_small.dcm"))]
    summary = run_import(runtime, trial, *sources, subject_id="SUBJ-002")
    ct, mr = summary.outcomes
    assert ct.status == "imported"
    (exam,) = all_exams(runtime)
    assert exam.modality == "CT" and exam.subject.subject_id == "SUBJ-002"
    # MR_small's manufacturer repeats its institution name: the leak check refuses the file.
    assert mr.status == "imported" or mr.reason.startswith("leak check failed")


def test_a_killed_import_continues_and_completes_the_receipt(
    runtime: Runtime, trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "in", 3)
    from trialship.services import exam_import

    calls = {"n": 0}
    real = exam_import._Run.import_item

    def dies_on_third(self, item):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, item)

    monkeypatch.setattr(exam_import._Run, "import_item", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_import(runtime, trial, tmp_path / "in")
    (exam,) = all_exams(runtime)
    assert exam.file_count == 2 and exam.state == ExamState.RECEIVED
    monkeypatch.setattr(exam_import._Run, "import_item", real)
    summary = run_import(runtime, trial, tmp_path / "in")
    assert summary.count("skipped") == 2 and summary.count("imported") == 1
    (exam,) = all_exams(runtime)
    assert exam.file_count == 3 and exam.state == ExamState.DEIDENTIFIED
    assert len(exam.receipt["payload"]["outputs"]) == 3


def test_confirming_another_time_point_rewrites_the_files_from_their_originals(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 1, study_date="20240301")
    run_import(runtime, trial, tmp_path / "in")
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        exam = session.scalars(select(Exam)).one()
        baseline = next(tp for tp in exam.subject.trial.timepoints if tp.timepoint_id == "BL")
        exams.confirm_timepoint(
            session,
            SYSTEM,
            runtime.vault,
            exam,
            baseline,
            today=runtime.today(),
            data_dir=data,
            signing_key=load_or_create_signing_key(data),
            now=NOW,
        )
    (exam,) = all_exams(runtime)
    assert exam.timepoint.timepoint_id == "BL" and exam.timepoint_confirmed
    (output,) = list((data / "exams").rglob("*.dcm"))
    assert pydicom.dcmread(output).ClinicalTrialTimePointID == "BL"
    assert verify_receipt_files(exam.receipt, exam_folder(data, exam)) is None


def test_retention_deletes_old_originals_and_keeps_the_rows(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    run_import(runtime, trial, tmp_path / "in")
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        assert exams.purge_originals(session, data, retention_days=90, now=dt.datetime.now()) == 0
        later = dt.datetime.now() + dt.timedelta(days=91)
        assert exams.purge_originals(session, data, retention_days=90, now=later) == 2
    assert not list((data / "originals").rglob("*.dcm"))
    with runtime.db.unit_of_work() as session:
        rows = list(session.scalars(select(Instance)))
        assert len(rows) == 2 and all(r.original_path == "" for r in rows)


def test_an_import_after_the_purge_keeps_the_originals_again_for_a_new_period(
    runtime: Runtime, trial: Trial, tmp_path: Path
) -> None:
    write_exam(tmp_path / "in", 2)
    write(exam_instance(3, patient_id="NOBODY"), tmp_path / "in" / "stranger.dcm")
    run_import(runtime, trial, tmp_path / "in")
    data = runtime.settings.data_dir
    later = dt.datetime.now() + dt.timedelta(days=91)
    with runtime.db.unit_of_work() as session:
        assert exams.purge_originals(session, data, retention_days=90, now=later) == 3
    again = run_import(runtime, trial, tmp_path / "in")
    assert again.count(Status.SKIPPED) == 2 and again.count(Status.QUARANTINED) == 1
    with runtime.db.unit_of_work() as session:
        kept = [row.original_path for row in session.scalars(select(Instance))]
        kept += [row.stored_path for row in session.scalars(select(QuarantinedFile))]
    assert len(kept) == 3
    assert all(kept) and all((data / relative).is_file() for relative in kept)
    assert sorted(p.relative_to(data).as_posix() for p in (data / "originals").rglob("*.dcm")) == (
        sorted(kept)
    )
    stored_again = (later - dt.timedelta(days=10)).timestamp()  # as if re-imported then
    for relative in kept:
        os.utime(data / relative, (stored_again, stored_again))
    with runtime.db.unit_of_work() as session:
        assert exams.purge_originals(session, data, retention_days=90, now=later) == 0
        end = later + dt.timedelta(days=85)
        assert exams.purge_originals(session, data, retention_days=90, now=end) == 3


def test_an_unexpected_error_quarantines_the_file_with_its_stored_original_once(
    runtime: Runtime, trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.errors import BytesLengthException

    from trialship.services import exam_import

    def broken(*_: object, **__: object) -> None:
        raise BytesLengthException(f"value {PHI['patient_id']} has the wrong length")

    monkeypatch.setattr(exam_import, "deidentify", broken)
    write_exam(tmp_path / "in", 1)
    (source,) = (tmp_path / "in").rglob("*.dcm")
    for _ in range(2):
        summary = run_import(runtime, trial, tmp_path / "in")
        assert summary.count(Status.QUARANTINED) == 1
    with runtime.db.unit_of_work() as session:
        (row,) = session.scalars(select(QuarantinedFile))
        assert row.reason == (
            "cannot import: a value's length does not fit its value representation"
        )
        assert row.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert row.size == source.stat().st_size
        assert (runtime.settings.data_dir / row.stored_path).is_file()
