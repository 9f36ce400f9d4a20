"""Registry values must fit the DICOM VR they will be written as."""

from __future__ import annotations

import datetime as dt

import pytest

from trialship import vr
from trialship.errors import ValidationError


def test_lo_accepts_64_characters_and_refuses_65() -> None:
    assert vr.identifier("subject_id", "A" * 64) == "A" * 64
    with pytest.raises(ValidationError, match="65 characters long; DICOM LO allows 64") as err:
        vr.identifier("subject_id", "A" * 65)
    assert err.value.field == "subject_id"


@pytest.mark.parametrize("bad", ["A\\B", "A\x00B", "A\nB", "A\x7fB"])
def test_lo_refuses_backslash_and_control_characters(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        vr.identifier("site_id", bad)
    assert err.value.field == "site_id"


def test_markup_and_sql_are_plain_text_to_lo() -> None:
    for text in ["<script>alert(1)</script>", "x'); DROP TABLE subjects;--"]:
        assert vr.text("name", text) == text


def test_st_allows_newlines_up_to_1024() -> None:
    assert vr.text("description", "line 1\nline 2", vr="ST") == "line 1\nline 2"
    with pytest.raises(ValidationError):
        vr.text("description", "x" * 1025, vr="ST")


def test_required_identifier_cannot_be_blank() -> None:
    with pytest.raises(ValidationError, match="is required"):
        vr.identifier("subject_id", "   ")


def test_dates_integers_booleans_and_choices() -> None:
    assert vr.date("baseline_date", "2026-02-03") == dt.date(2026, 2, 3)
    assert vr.date("baseline_date", "") is None
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        vr.date("baseline_date", "03/02/2026")
    assert vr.integer("day_offset", "12") == 12
    with pytest.raises(ValidationError, match="at least 0"):
        vr.integer("order", -1, minimum=0)
    with pytest.raises(ValidationError, match="whole number"):
        vr.integer("order", True)
    assert vr.boolean("consent", "Yes") is True
    assert vr.boolean("consent", "") is False
    with pytest.raises(ValidationError):
        vr.boolean("consent", "maybe")
    assert vr.choice("status", "", ["a", "b"], default="a") == "a"
    with pytest.raises(ValidationError, match="one of a, b"):
        vr.choice("status", "c", ["a", "b"])
