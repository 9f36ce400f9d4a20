"""Clean Descriptors redacts the patient's identifiers and anything that looks like a date,
a phone number or an ID from free text, keeping the rest of the wording."""

from __future__ import annotations

import pytest
from deid_helpers import make_ctx, make_profile, patient_dataset

from trialship.deid import Option, deidentify
from trialship.deid.identifiers import Identifiers, collect_identifiers
from trialship.deid.scrub import Scrubber


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("compare with 28 Feb 2024 exam", "compare with XX XXX XXXX exam"),
        ("prior 4-JUL-1951", "prior XXXXXXXXXX"),
        ("seen February 28, 2024", "seen XXXXXXXX XXX XXXX"),
        ("3rd March 2024 follow-up", "XXX XXXXX XXXX follow-up"),
        ("may be 5 mm", "may be 5 mm"),  # a month's name alone is no date
        ("CT 3 months later", "CT 3 months later"),
    ],
)
def test_dates_written_with_the_months_name_are_redacted(text: str, cleaned: str) -> None:
    assert Scrubber(Identifiers()).scrub(text)[0] == cleaned


def test_the_ascii_spellings_of_a_non_ascii_name_are_redacted() -> None:
    ds = patient_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jürgen"
    scrubber = Scrubber(collect_identifiers(ds))
    assert scrubber.scrub("CT for Mueller Juergen, Muller J.") == (
        "CT for XXXXXXX XXXXXXX, XXXXXX J.",
        3,
    )


def test_a_description_is_cleaned_and_the_file_passes_the_leak_check() -> None:
    ds = patient_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jürgen"
    ds.StudyDescription = "Scan for Mueller, compare 10 Jan 2024"
    profile = make_profile([Option.CLEAN_DESCRIPTORS])
    result = deidentify(ds, profile, make_ctx())
    assert result.ok, result.leaks
    assert result.dataset.StudyDescription == "Scan for XXXXXXX, compare XX XXX XXXX"


@pytest.mark.parametrize("text", ["MRN 471 1001 prior", "MRN-4711-001", "mrn.4711.001"])
def test_an_id_written_with_spaces_or_dashes_inside_is_redacted(text: str) -> None:
    scrubber = Scrubber(collect_identifiers(patient_dataset()))  # PatientID MRN4711001
    cleaned, spans = scrubber.scrub(text)
    assert spans == 1 and "471" not in cleaned and "MRN" not in cleaned
