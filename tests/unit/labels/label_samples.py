"""Label contents and a small template used across the label tests (no real patient data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from trialship.labels import LabelContent

MANIFEST_SHA256 = "3f" * 32

HIRO = LabelContent(
    disc_number=1,
    disc_count=2,
    disc_id="HIRO-S101-0042-D1",
    manifest_sha256=MANIFEST_SHA256,
    trial_name="HIRO Hippocampal Imaging in Resistant Obesity",
    protocol_number="HIRO-2024-07",
    site_number="101",
    subject_id="101-0042",
    time_point="Week 12",
    exam_date=dt.date(2024, 3, 5),
    modality="MR",
    exam_description="Brain with and without contrast",
)

RESEARCH = LabelContent(
    disc_number=2,
    disc_count=2,
    disc_id="REQ-077-D2",
    manifest_sha256="c4" * 32,
    requester_name="Dr. Ada Lovelace",
    study_name="Cortical thickness in ageing",
    request_number="R-2024-077",
)

# A one-field rectangle label; tests append or replace lines to provoke one error at a time.
SMALL = """\
title = "Small test label"

[page]
width_mm = 100
height_mm = 60

[label]
shape = "rect"
width_mm = 80
height_mm = 40
min_font_size = 6

[[slots]]
x_mm = 10
y_mm = 10

[[fields]]
name = "subject"
text = "Subject {subject_id}"
x_mm = 5
y_mm = 30
max_width_mm = 40
font_size = 12
max_lines = 2
"""


def write_template(folder: Path, text: str = SMALL, name: str = "small") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path
