"""Every shipped template renders trial and research contents; the QR code decodes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.unit.labels.label_samples import HIRO, MANIFEST_SHA256, RESEARCH
from trialship.labels import list_templates, load_template, preview_png, render_labels
from trialship.labels.render import qr_widget

SHIPPED = ("cd_face", "jewel_case", "a4_two_up", "letter_two_up")


def test_the_four_templates_are_shipped() -> None:
    assert set(SHIPPED) <= set(list_templates())


@pytest.mark.parametrize("name", SHIPPED)
def test_each_template_renders_trial_and_research_contents(name: str) -> None:
    template = load_template(name)
    for contents in ([HIRO], [RESEARCH], [HIRO, RESEARCH, HIRO]):
        rendered = render_labels(template, contents)
        assert rendered.pdf.startswith(b"%PDF-")
        assert rendered.warnings == ()
        assert rendered.pages == -(-len(contents) // len(template.slots))


@pytest.mark.parametrize("name", SHIPPED)
def test_no_hospital_name_in_any_template(name: str) -> None:
    keys = load_template(name).keys
    assert {"trial_name", "protocol_number", "subject_id", "disc_label"} <= keys
    assert not [k for k in keys if "hospital" in k or "institution" in k]


def test_the_same_contents_give_the_same_pdf() -> None:
    template = load_template("cd_face")
    assert render_labels(template, [HIRO]).pdf == render_labels(template, [HIRO]).pdf


def test_two_up_sheets_fill_slots_in_order_and_add_pages() -> None:
    rendered = render_labels(load_template("a4_two_up"), [HIRO, RESEARCH, HIRO])
    assert rendered.pages == 2


def test_the_qr_widget_holds_the_disc_id_and_manifest_hash() -> None:
    assert qr_widget(HIRO.qr_payload).value == (
        f"disc_id=HIRO-S101-0042-D1\nmanifest_sha256={MANIFEST_SHA256}"
    )


@pytest.mark.parametrize("name", ["cd_face", "jewel_case"])
def test_the_printed_qr_code_decodes_to_disc_id_and_manifest_hash(name: str) -> None:
    import zxingcpp  # a test extra: ./scripts/test installs it

    pdf = render_labels(load_template(name), [HIRO]).pdf
    image = Image.open(io.BytesIO(preview_png(pdf, dpi=300)))
    texts = [r.text for r in zxingcpp.read_barcodes(image)]
    assert texts == [HIRO.qr_payload]
