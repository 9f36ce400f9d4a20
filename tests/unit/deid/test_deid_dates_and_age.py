"""Whole-day shifts keep every interval; ages are at the exam and capped at 90."""

from __future__ import annotations

import datetime as dt

import pytest
from deid_helpers import SHIFT, make_ctx, make_profile, patient_dataset

from trialship.deid import Option, date_offset, deidentify
from trialship.deid.age import age_at, cap_age
from trialship.deid.dates import shift_da, shift_dt
from trialship.deid.profile import PatientAgePolicy


def _days(a: str, b: str) -> int:
    return (
        dt.date.fromisoformat(f"{b[:4]}-{b[4:6]}-{b[6:8]}")
        - dt.date.fromisoformat(f"{a[:4]}-{a[4:6]}-{a[6:8]}")
    ).days


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240301", "20240121"),
        ("2024.03.01", "20240121"),
        ("202403", "202401"),
        ("2024", "2023"),
        ("20240101-20240301", "20231122-20240121"),
        ("-20240301", "-20240121"),
        ("20240301-", "20240121-"),
        ("20240230", None),
        ("garbage", None),
    ],
)
def test_da_shift_handles_partial_ranges_and_malformed(value: str, expected: str | None) -> None:
    assert shift_da(value, -40) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240301123000.123+0100", "20240121123000.123+0100"),
        ("20240301123000-0500", "20240121123000-0500"),
        ("2024030112", "2024012112"),
        ("20240301-20240302", "20240121-20240122"),
        ("2024030112x", None),
    ],
)
def test_dt_shift_keeps_time_and_utc_offset(value: str, expected: str | None) -> None:
    assert shift_dt(value, -40) == expected


def test_date_offset_is_stable_in_range_and_never_zero() -> None:
    offsets = {date_offset(b"secret", f"S{n}", -3, 3) for n in range(200)}
    assert offsets == {-3, -2, -1, 1, 2, 3}
    assert date_offset(b"secret", "S1", -365, -30) == date_offset(b"secret", "S1", -365, -30)


def test_modified_dates_shift_every_date_by_the_same_days_and_keep_times() -> None:
    ds = patient_dataset()
    ds.SeriesDate = "20240112"
    ds.AcquisitionDateTime = "20240113235959.5+0100"
    profile = make_profile([Option.RETAIN_LONGITUDINAL_MODIFIED_DATES])
    out = deidentify(ds, profile, make_ctx()).dataset
    assert out.StudyDate == shift_da("20240110", SHIFT)
    assert _days(out.StudyDate, out.SeriesDate) == 2
    assert out.AcquisitionDateTime.endswith("235959.5+0100")
    assert _days(out.StudyDate, out.AcquisitionDateTime[:8]) == 3
    assert out.StudyTime == "101500"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_modified_dates_also_shift_dates_the_table_does_not_list() -> None:
    ds = patient_dataset()
    ds.StudyUpdateDateTime = "20240115120000"  # newer than Table E.1-1
    ds.DateOfLastCalibration = "20240105"  # Retain Device Identity keeps it, Modified shifts it
    options = [Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.RETAIN_DEVICE_IDENTITY]
    result = deidentify(ds, make_profile(options), make_ctx())
    out = result.dataset
    assert _days(out.StudyDate, out.StudyUpdateDateTime[:8]) == 5
    assert out.StudyUpdateDateTime.endswith("120000")
    assert _days(out.StudyDate, out.DateOfLastCalibration) == -5
    entries = {entry.keyword: entry for entry in result.report.entries}
    assert entries["StudyUpdateDateTime"].action.value == "shifted"
    kept = patient_dataset()
    kept.StudyUpdateDateTime = "20240115120000"
    full = make_profile([Option.RETAIN_LONGITUDINAL_FULL_DATES])
    assert deidentify(kept, full, make_ctx()).dataset.StudyUpdateDateTime == "20240115120000"


def test_full_dates_are_kept_and_no_option_removes_them() -> None:
    full = deidentify(
        patient_dataset(), make_profile([Option.RETAIN_LONGITUDINAL_FULL_DATES]), make_ctx()
    )
    assert full.dataset.StudyDate == "20240110"
    assert full.dataset.LongitudinalTemporalInformationModified == "UNMODIFIED"
    basic = deidentify(patient_dataset(), make_profile(), make_ctx()).dataset
    assert basic.StudyDate == "19000101"  # media dummy after Z
    assert "SeriesDate" not in basic or basic.SeriesDate == ""
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_malformed_date_is_removed_and_reported() -> None:
    ds = patient_dataset()
    with pytest.warns(UserWarning):
        ds.SeriesDate = "2024-13-45"
    result = deidentify(ds, make_profile([Option.RETAIN_LONGITUDINAL_MODIFIED_DATES]), make_ctx())
    assert "SeriesDate" not in result.dataset
    entry = next(e for e in result.report.entries if e.keyword == "SeriesDate")
    assert entry.action.value == "removed" and "malformed" in entry.detail


@pytest.mark.parametrize(
    ("birth", "exam", "expected"),
    [
        ("1979-05-10", "2024-05-09", "044Y"),
        ("1979-05-10", "2024-05-10", "045Y"),
        ("1930-01-01", "2024-01-01", "090Y"),
        ("1920-01-01", "2024-01-01", "090Y"),
        ("2024-01-01", "2024-01-05", "004D"),
        ("2024-01-01", "2024-01-20", "002W"),
        ("2023-01-15", "2024-01-20", "012M"),
        ("2024-02-01", "2024-01-01", None),
    ],
)
def test_age_at_exam(birth: str, exam: str, expected: str | None) -> None:
    assert age_at(dt.date.fromisoformat(birth), dt.date.fromisoformat(exam)) == expected


def test_existing_age_is_capped() -> None:
    assert cap_age("095Y") == "090Y" and cap_age("045Y") == "045Y" and cap_age("45") is None


def test_engine_writes_capped_age_or_removes_it() -> None:
    ds = patient_dataset()
    ds.PatientBirthDate = "19300101"
    assert deidentify(ds, make_profile(), make_ctx()).dataset.PatientAge == "090Y"
    ds = patient_dataset()
    assert deidentify(ds, make_profile(), make_ctx()).dataset.PatientAge == "073Y"
    removed = deidentify(
        patient_dataset(), make_profile(patient_age=PatientAgePolicy.REMOVE), make_ctx()
    ).dataset
    assert "PatientAge" not in removed
