"""A template with a mistake is refused with a message that names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.labels.label_samples import SMALL, write_template
from trialship.labels import LabelError, list_templates, load_template


def _refused(tmp_path: Path, text: str) -> str:
    path = write_template(tmp_path, text)
    with pytest.raises(LabelError) as caught:
        load_template(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_the_small_template_loads_by_path(tmp_path: Path) -> None:
    template = load_template(write_template(tmp_path))
    assert template.name == "small"
    assert template.title == "Small test label"
    assert template.keys == {"subject_id"}
    assert template.fields[0].font == "Helvetica"


def test_shipped_templates_are_listed_and_load_by_name() -> None:
    assert set(list_templates()) >= {"cd_face", "jewel_case", "a4_two_up", "letter_two_up"}
    assert load_template("cd_face").shape.outer_diameter_mm == 117


def test_an_unknown_template_name_lists_the_shipped_ones() -> None:
    with pytest.raises(LabelError, match=r"no label template named 'dvd_face'.*cd_face"):
        load_template("dvd_face")


def test_an_unknown_content_key_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("{subject_id}", "{hospital_name}"))
    assert "fields[0].text" in message
    assert "unknown content key 'hospital_name'" in message


def test_a_misspelt_key_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("font_size = 12", "fontsize = 12"))
    assert "fields[0].fontsize: unknown key" in message


def test_a_missing_table_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("[[slots]]\nx_mm = 10\ny_mm = 10\n", ""))
    assert "slots: is required" in message


def test_a_wrong_type_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("font_size = 12", 'font_size = "big"'))
    assert "fields[0].font_size: must be a number" in message


def test_an_unknown_font_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("max_lines = 2", 'max_lines = 2\nfont = "Arial"'))
    assert "fields[0].font: unknown font 'Arial'" in message


def test_a_minimum_font_size_above_the_size_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("font_size = 12", "font_size = 5"))
    assert "fields[0].min_font_size: must not exceed font_size" in message


def test_a_field_reaching_outside_the_label_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("max_width_mm = 40", "max_width_mm = 90"))
    assert "field 'subject' reaches outside the label" in message


def test_a_label_off_the_page_is_an_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, SMALL.replace("x_mm = 10\n", "x_mm = 30\n"))
    assert "slots[0].x_mm: the label does not fit on the page" in message


def test_a_named_page_size_must_be_known(tmp_path: Path) -> None:
    text = SMALL.replace("width_mm = 100\nheight_mm = 60", 'size = "A3"')
    assert "page.size: must be A4 or Letter" in _refused(tmp_path, text)


def test_a_field_needs_exactly_one_source(tmp_path: Path) -> None:
    text = SMALL.replace('name = "subject"', 'name = "subject"\nkey = "site_number"')
    assert "give exactly one of key, text or lines" in _refused(tmp_path, text)


def test_disc_fields_may_not_cover_the_hub(tmp_path: Path) -> None:
    text = (
        '[page]\nsize = "A4"\n[label]\nshape = "disc"\nouter_diameter_mm = 117\n'
        "hub_diameter_mm = 41\n[[slots]]\nx_mm = 105\ny_mm = 148\n"
        "[qr]\nx_mm = 0\ny_mm = 0\nsize_mm = 15\n"
    )
    assert "qr.x_mm: the QR code overlaps the hub" in _refused(tmp_path, text)


def test_arc_text_is_a_single_line(tmp_path: Path) -> None:
    text = SMALL.replace(
        "max_lines = 2", "max_lines = 2\narc = { radius_mm = 10, start_deg = 90, end_deg = 0 }"
    )
    assert "arc text is one line" in _refused(tmp_path, text)


def test_extends_inherits_the_design_and_replaces_whole_tables(tmp_path: Path) -> None:
    write_template(tmp_path)
    child = write_template(
        tmp_path,
        'extends = "small"\n[page]\nwidth_mm = 200\nheight_mm = 60\n'
        "[[slots]]\nx_mm = 10\ny_mm = 10\n[[slots]]\nx_mm = 110\ny_mm = 10\n",
        name="small_two_up",
    )
    template = load_template(child)
    assert len(template.slots) == 2
    assert template.fields[0].name == "subject"
    assert template.title == "small_two_up"


def test_a_template_that_extends_itself_is_an_error(tmp_path: Path) -> None:
    path = write_template(tmp_path, 'extends = "loop"\n', name="loop")
    with pytest.raises(LabelError, match="extends itself"):
        load_template(path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    assert "not valid TOML" in _refused(tmp_path, SMALL + "\n[page\n")
