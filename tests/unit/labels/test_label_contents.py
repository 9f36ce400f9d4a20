"""Label contents: named fields for templates, one kind per label, no hospital name."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.unit.labels.label_samples import HIRO, MANIFEST_SHA256, RESEARCH
from trialship.labels import LabelContent, LabelError, field_keys


def test_trial_contents_give_every_printed_value() -> None:
    values = HIRO.fields()
    assert values["trial_name"].startswith("HIRO")
    assert values["exam_date"] == "2024-03-05"
    assert values["exam_type"] == "MR · Brain with and without contrast"
    assert values["disc_label"] == "Disc 1 of 2"
    assert values["deidentified"] == "De-identified"
    assert values["study_name"] == ""
    assert set(values) == field_keys()


def test_research_contents_leave_the_trial_fields_empty() -> None:
    values = RESEARCH.fields()
    assert values["requester_name"] == "Dr. Ada Lovelace"
    assert values["trial_name"] == values["subject_id"] == ""


def test_there_is_no_field_for_a_hospital_or_institution() -> None:
    assert not [k for k in field_keys() if "hospital" in k or "institution" in k]


def test_the_qr_payload_holds_the_disc_id_and_the_manifest_hash() -> None:
    assert HIRO.qr_payload == f"disc_id=HIRO-S101-0042-D1\nmanifest_sha256={MANIFEST_SHA256}"
    assert LabelContent().qr_payload == ""


@pytest.mark.parametrize(
    "change",
    [
        {"disc_number": 3},
        {"disc_number": 0},
        {"study_name": "Also research"},
        {"manifest_sha256": ""},
    ],
)
def test_inconsistent_contents_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(LabelError):
        dataclasses.replace(HIRO, **change)


def test_line_breaks_in_values_become_spaces() -> None:
    assert dataclasses.replace(HIRO, subject_id="101\n0042").fields()["subject_id"] == "101 0042"
