"""Long values are shrunk, then wrapped, and refused (or, if asked, shortened) — never clipped."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.unit.labels.label_samples import HIRO, SMALL, write_template
from trialship.labels import LabelError, load_template, render_labels
from trialship.labels.fit import ELLIPSIS, fit_arc, fit_lines, width, wrap
from trialship.labels.template import PT_PER_MM

WIDTH = 40 * PT_PER_MM


def _fit(text: str, *, max_lines: int = 2, ellipsize: bool = False) -> list[tuple[str, float]]:
    fitted = fit_lines(
        [text],
        font="Helvetica",
        size=12,
        min_size=6,
        max_width=WIDTH,
        max_lines=max_lines,
        ellipsize=ellipsize,
    )
    return [(line.text, line.size) for line in fitted.lines]


def test_text_that_fits_keeps_its_size() -> None:
    assert _fit("Subject 101-0042") == [("Subject 101-0042", 12)]


def test_slightly_long_text_is_shrunk_before_it_is_wrapped() -> None:
    [(text, size)] = _fit("Subject 101-0042-ABCDEFGH-12")
    assert text == "Subject 101-0042-ABCDEFGH-12"
    assert 6 <= size < 12
    assert width(text, "Helvetica", size) <= WIDTH


def test_a_very_long_subject_id_wraps_at_the_largest_size_that_fits() -> None:
    long_id = "Subject " + "0123456789" * 5
    lines = _fit(long_id)
    assert len(lines) == 2
    assert "".join(t for t, _ in lines).replace(" ", "") == long_id.replace(" ", "")
    assert all(width(t, "Helvetica", s) <= WIDTH for t, s in lines)
    assert lines[0][1] == lines[1][1] >= 6


def test_words_wrap_at_spaces_and_words_longer_than_a_line_between_characters() -> None:
    assert wrap("Brain with and without contrast", "Helvetica", 12, WIDTH) == [
        "Brain with and",
        "without contrast",
    ]
    parts = wrap("X" * 60, "Helvetica", 12, WIDTH)
    assert "".join(parts) == "X" * 60
    assert all(width(p, "Helvetica", 12) <= WIDTH for p in parts)


def test_text_that_cannot_fit_at_the_minimum_size_is_refused_or_shortened() -> None:
    from trialship.labels.fit import NoFit

    text = "Brain " * 40
    with pytest.raises(NoFit):
        _fit(text)
    lines = _fit(text, ellipsize=True)
    assert len(lines) == 2
    assert lines[-1][0].endswith(ELLIPSIS)


def test_arc_text_shrinks_to_the_arc_length() -> None:
    fitted = fit_arc("A" * 30, font="Helvetica", size=12, min_size=6, length=200, ellipsize=False)
    assert width(fitted.lines[0].text, "Helvetica", fitted.lines[0].size) <= 200
    with pytest.raises(Exception, match="A"):
        fit_arc("A" * 90, font="Helvetica", size=12, min_size=6, length=200, ellipsize=False)


def test_rendering_names_the_field_that_does_not_fit(tmp_path: Path) -> None:
    template = load_template(write_template(tmp_path))
    too_long = dataclasses.replace(HIRO, subject_id="SUBJECT-" * 30)
    with pytest.raises(LabelError, match=r"field 'subject'.*does not fit in 2 line"):
        render_labels(template, [too_long])


def test_a_very_long_description_wraps_on_the_disc_face() -> None:
    long = dataclasses.replace(
        HIRO,
        exam_description="Brain MRI with and without gadolinium contrast, "
        "diffusion tensor imaging and resting-state functional sequences",
    )
    rendered = render_labels(load_template("cd_face"), [long])
    assert rendered.warnings == ()


def test_ellipsize_flag_shortens_and_says_so(tmp_path: Path) -> None:
    text = SMALL.replace("min_font_size = 6", 'min_font_size = 6\noverflow = "ellipsize"')
    template = load_template(write_template(tmp_path, text))
    rendered = render_labels(template, [dataclasses.replace(HIRO, subject_id="SUBJECT-" * 30)])
    assert rendered.pdf.startswith(b"%PDF")
    assert len(rendered.warnings) == 1
    assert "label 1: field 'subject' was shortened" in rendered.warnings[0]
