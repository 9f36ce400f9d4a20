"""The engine's shortcuts (raw values read without converting, the leak check's glance over the
whole output) give the same answers as the slow paths they skip."""

from __future__ import annotations

import io

import pydicom
import pytest
from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset

from trialship.deid import collect_identifiers, deidentify, find_leaks, leak
from trialship.deid.elements import raw_string_values, text_value


def _round_trip(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def test_raw_string_values_read_what_pydicom_converts() -> None:
    ds = patient_dataset()
    ds.OtherPatientIDs = ["OLD-1", " OLD-2 "]
    ds.StudyDescription = "CT chest "
    ds.SpecificCharacterSet = "ISO_IR 100"
    raw, converted = _round_trip(ds), _round_trip(ds)
    for keyword in (
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "StudyDescription",
        "PatientBirthDate",
        "Modality",
        "SOPClassUID",
        "AccessionNumber",
    ):
        value = converted.get(keyword)
        items = value if isinstance(value, list | pydicom.multival.MultiValue) else [value]
        expected = [str(item).strip() for item in items if str(item).strip()]
        found = raw_string_values(raw, keyword)
        assert found is not None, keyword
        assert [text.strip() for text in found if text.strip()] == expected, keyword
        assert raw.get_item(keyword).is_raw, "reading must not convert the element"
    assert raw_string_values(raw, "PatientComments") == []
    assert text_value(raw, "Modality") == str(converted.Modality).strip()


def test_non_ascii_and_converted_elements_fall_back_to_pydicom() -> None:
    ds = patient_dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    raw = _round_trip(ds)
    assert raw_string_values(raw, "PatientName") is None
    assert text_value(raw, "PatientName") == "Müller^Jürgen"
    raw.PatientID = "NEW"
    assert raw_string_values(raw, "PatientID") is None


def _scan_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leak, "_clean_at_a_glance", lambda scanner, ds, meta: False)


@pytest.mark.parametrize("where", ["top", "nested", "file_meta", "none"])
def test_glance_never_hides_a_leak(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _round_trip(patient_dataset())
    identifiers = collect_identifiers(ds)
    result = deidentify(ds, make_profile(), make_ctx(), check_leaks=False)
    out = result.dataset
    name = sorted(identifiers.name_parts)[0]
    if where == "top":
        out.ImageComments = f"seen by {name}"
    elif where == "nested":
        item = Dataset()
        inner = Dataset()
        inner.ImageComments = f"for {name.upper()}"
        item.ReferencedImageSequence = [inner]
        out.SourceImageSequence = [item]
    elif where == "file_meta":
        out.file_meta.ImplementationVersionName = name[:16]
    fast = sorted((found.kind, found.path) for found in find_leaks(out, identifiers))
    _scan_everything(monkeypatch)
    slow = sorted((found.kind, found.path) for found in find_leaks(out, identifiers))
    assert fast == slow
    assert bool(fast) is (where != "none")
