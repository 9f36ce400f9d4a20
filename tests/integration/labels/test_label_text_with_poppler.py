"""Poppler reads every required value off each rendered label; previews have the page's size."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from trialship.labels import LabelContent, load_template, preview_png, render_label

HIRO = LabelContent(
    disc_number=1,
    disc_count=2,
    disc_id="HIRO-S101-0042-D1",
    manifest_sha256="3f" * 32,
    trial_name="HIRO Hippocampal Imaging",
    protocol_number="HIRO-2024-07",
    site_number="101",
    subject_id="101-0042",
    time_point="Week 12",
    exam_date=dt.date(2024, 3, 5),
    modality="MR",
    exam_description="Brain with contrast",
)
RESEARCH = LabelContent(
    disc_id="REQ-077-D1",
    manifest_sha256="c4" * 32,
    requester_name="Dr. Ada Lovelace",
    study_name="Cortical thickness in ageing",
    request_number="R-2024-077",
)
TEMPLATES = ("cd_face", "jewel_case", "a4_two_up", "letter_two_up")
HIRO_TEXTS = (
    "Protocol HIRO-2024-07",
    "Site 101",
    "101-0042",
    "Week 12",
    "2024-03-05",
    "MR · Brain with contrast",
    "Disc 1 of 2",
    "De-identified",
)


@pytest.fixture(scope="module")
def poppler() -> tuple[str, str]:
    found = (shutil.which("pdftotext"), shutil.which("pdftoppm"))
    if None in found:
        pytest.fail("poppler-utils (pdftotext, pdftoppm) is missing: apt-get install poppler-utils")
    return found  # type: ignore[return-value]


def _text(pdf: bytes, tmp_path: Path, *, raw: bool) -> str:
    path = tmp_path / "label.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", *(["-raw"] if raw else []), "-enc", "UTF-8", str(path), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _squeezed(text: str) -> str:
    # Arc text comes out one character per line, in drawing order: compare without whitespace
    # (and colons, which some layouts put after a caption such as "Site:").
    return re.sub(r"[\s:]+", "", text)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_required_field_is_readable(
    name: str, tmp_path: Path, poppler: tuple[str, str]
) -> None:
    raw = _squeezed(_text(render_label(load_template(name), [HIRO]), tmp_path, raw=True))
    for expected in (HIRO.trial_name, *HIRO_TEXTS):
        assert _squeezed(expected) in raw, f"{expected!r} missing from {name}"
    assert "hospital" not in raw.lower()


@pytest.mark.parametrize("name", TEMPLATES)
def test_research_contents_are_readable(
    name: str, tmp_path: Path, poppler: tuple[str, str]
) -> None:
    raw = _squeezed(_text(render_label(load_template(name), [RESEARCH]), tmp_path, raw=True))
    for expected in ("Dr. Ada Lovelace", "Cortical thickness in ageing", "R-2024-077"):
        assert _squeezed(expected) in raw, f"{expected!r} missing from {name}"


def test_the_arc_carries_trial_name_and_protocol_on_the_disc_face(
    tmp_path: Path, poppler: tuple[str, str]
) -> None:
    raw = _squeezed(_text(render_label(load_template("cd_face"), [HIRO]), tmp_path, raw=True))
    assert _squeezed("HIRO Hippocampal Imaging · Protocol HIRO-2024-07") in raw
    assert _squeezed("Disc ID HIRO-S101-0042-D1") in raw


def test_straight_text_reads_as_lines(tmp_path: Path, poppler: tuple[str, str]) -> None:
    text = _text(render_label(load_template("jewel_case"), [HIRO]), tmp_path, raw=False)
    assert "Subject: 101-0042" in text
    assert "Disc 1 of 2" in text


# A4 is 8.27 x 11.69 in, Letter 8.5 x 11 in; pdfium rounds a fraction of a pixel either way.
@pytest.mark.parametrize(
    ("name", "size"), [("cd_face", (827, 1169)), ("letter_two_up", (850, 1100))]
)
def test_the_preview_is_a_png_of_the_page_at_the_given_dpi(
    name: str, size: tuple[int, int]
) -> None:
    png = preview_png(render_label(load_template(name), [HIRO, HIRO]), dpi=100)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert abs(image.size[0] - size[0]) <= 1
    assert abs(image.size[1] - size[1]) <= 1
    darkest, _ = image.convert("L").getextrema()
    assert isinstance(darkest, int) and darkest < 50  # something dark was drawn


def test_pdftoppm_agrees_that_each_page_renders(tmp_path: Path, poppler: tuple[str, str]) -> None:
    path = tmp_path / "sheet.pdf"
    path.write_bytes(render_label(load_template("a4_two_up"), [HIRO, RESEARCH, HIRO]))
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(path), str(tmp_path / "p")], check=True)
    assert len(list(tmp_path.glob("p-*.png"))) == 2
