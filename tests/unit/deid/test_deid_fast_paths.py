"""The engine's shortcuts (raw values read without converting, the leak check's glance over the
whole output, text written pre-encoded, remembered scrubs) give the same answers as the slow paths
they skip."""

from __future__ import annotations

import io
import re
from typing import Any

import pydicom
import pytest
from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from trialship.deid import Option, collect_identifiers, deidentify, find_leaks, leak
from trialship.deid.elements import encoded_text, new_element, raw_string_values, text_value
from trialship.deid.scrub import Scrubber, scrubber_for


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


_TEXT_TAGS = {
    "AE": 0x00080054,
    "AS": 0x00101010,
    "CS": 0x00080060,
    "DA": 0x00080020,
    "DT": 0x0008002A,
    "LO": 0x00080070,
    "LT": 0x00084000,
    "PN": 0x00100010,
    "SH": 0x00080050,
    "ST": 0x00080081,
    "TM": 0x00080030,
    "UC": 0x00189377,
    "UI": 0x00080018,
    "UR": 0x00080120,
    "UT": 0x00400B02,
}
_WRITTEN = ["", "ANONYMIZED", "19000101", "2.25.123", "000D", "A", ["20240101", "20230101"]]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom: "ANONYMIZED" is no valid UID
@pytest.mark.parametrize("vr", sorted(_TEXT_TAGS))
@pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192", ["", "ISO 2022 IR 87"]])
def test_engine_written_text_reads_back_as_the_element_it_replaces(vr: str, charset: Any) -> None:
    tag = _TEXT_TAGS[vr]
    for value in _WRITTEN:
        if isinstance(value, list) and vr in {"LT", "ST", "UT", "UR"}:
            continue
        expected = DataElement(tag, vr, value, validation_mode=config.IGNORE)
        written = new_element(tag, vr, value)
        ds = Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds._dict[BaseTag(tag)] = written
        read = ds[tag]
        if written.is_raw:
            assert encoded_text(vr, value) is not None
        assert (read.VR, read.VM, str(read.value)) == (
            expected.VR,
            expected.VM,
            str(expected.value),
        )
        assert read.value == expected.value
        assert type(read.value) is type(expected.value)


@pytest.mark.parametrize(
    ("vr", "value"),
    [("UI", ""), ("LO", "Müller"), ("LO", "a\\b"), ("LO", " padded"), ("SH", "x\x1b"), ("US", 1)],
)
def test_values_that_would_not_read_back_the_same_stay_data_elements(vr: str, value: Any) -> None:
    assert encoded_text(vr, value) is None
    assert not new_element(0x00080050, vr, value).is_raw


def test_a_scrubbers_remembered_answers_are_its_answers() -> None:
    identifiers = collect_identifiers(patient_dataset())
    fresh, cached = Scrubber(identifiers), scrubber_for(identifiers)
    for text in ("CT chest for Johanna Smithson", "Axial 5mm", "call 555 867 5309", ""):
        for _ in range(2):
            assert cached.scrub(text) == fresh.scrub(text)
            assert cached.finds(text) == fresh.finds(text)


def test_no_original_value_is_remembered_once_the_run_is_over() -> None:
    from trialship.deid import forget_cached_values
    from trialship.deid.dates import shift_da
    from trialship.deid.uids import remap_uid

    profile = make_profile([Option.RETAIN_LONGITUDINAL_MODIFIED_DATES])
    deidentify(_round_trip(patient_dataset()), profile, make_ctx())
    remembered = (scrubber_for, remap_uid, shift_da)
    assert all(cache.cache_info().currsize for cache in remembered)
    name = sorted(collect_identifiers(patient_dataset()).name_parts)[0]
    assert any(name in str(key) for key in re._cache)  # (the scrubber's and leak check's)
    forget_cached_values()
    assert not any(cache.cache_info().currsize for cache in remembered)
    assert not any(name in str(key) for key in re._cache)


def test_a_scrubber_shares_the_leak_checks_own_compiled_patterns() -> None:
    from trialship.deid.matching import IdentifierPatterns
    from trialship.deid.scrub import _GENERIC_REGEX

    identifiers = collect_identifiers(patient_dataset())
    patterns = IdentifierPatterns(identifiers)
    scrubber = Scrubber(identifiers)
    assert scrubber._regexes("Axial 5mm") == [_GENERIC_REGEX]  # (no kind compiled for it)
    regexes = scrubber._regexes("Smithson, MRN4711001, born 15 March 1950, 12 Elmwood Avenue")
    shared = [patterns.names, patterns.kinds["id"], patterns.kinds["birth_date"]]
    assert all(any(mine is theirs for mine in regexes) for theirs in shared)
    assert regexes[-1] is _GENERIC_REGEX


_TEXTS = [
    "Axial 5mm",
    "CT chest for Johanna Smithson",
    "JOHANNA-SMITHSON follow-up",
    "Smithsonian archive",  # (no whole word)
    "MRN4711001 prior",
    "mrn 471 1001 prior",
    "m.r.n-4711001",
    "ACC99887766",
    "born 15 March 1950",
    "15th of mar 1950",
    "Mar. 15, 1950",
    "15.03.1950 and 1950-03-15",
    "1950 was a year",
    "seen at springfield memorial hospital",
    "12 Elmwood Avenue",
    "Jöhanna Smithsön",
    "call +1 555 867 5309",
]


@pytest.mark.parametrize("text", _TEXTS)
def test_kinds_compiled_only_when_needed_find_what_all_of_them_find(text: str) -> None:
    # A kind is skipped only for a text that lacks all its tokens: the result is the same as
    # with every pattern tried.
    from trialship.deid.matching import without_separators
    from trialship.deid.scrub import _GENERIC_REGEX, _REDACTABLE

    scrubber = Scrubber(collect_identifiers(patient_dataset()))
    lowered = text.lower()
    every = [
        regex
        for kind in scrubber._kinds
        if (regex := kind.regex_for(lowered, without_separators(lowered), every=True))
    ]
    spans = sorted(
        match.span() for regex in [*every, _GENERIC_REGEX] for match in regex.finditer(text)
    )
    covered = {index for start, end in spans for index in range(start, end)}
    expected = "".join(
        _REDACTABLE.sub("X", char) if index in covered else char for index, char in enumerate(text)
    )
    assert scrubber.scrub(text)[0] == expected
    assert scrubber.finds(text) == bool(spans)


def test_overlapping_finds_of_two_kinds_are_one_redacted_span() -> None:
    identifiers = collect_identifiers(patient_dataset())
    name = sorted(identifiers.name_parts)[0]
    # A name part glued to an ID-like run of digits: the name and the digit run overlap nothing,
    # a date and the digit run inside it overlap, and come out as one span.
    text, count = Scrubber(identifiers).scrub(f"{name} seen 20240131")
    assert text == f"{'X' * len(name)} seen XXXXXXXX"
    assert count == 2
