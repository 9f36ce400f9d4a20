"""Draw label contents into a template's slots: reportlab canvas in, PDF bytes out."""

from __future__ import annotations

import io
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.pdfgen.canvas import Canvas

from trialship.labels import fit
from trialship.labels.content import LabelContent
from trialship.labels.errors import LabelError
from trialship.labels.template import PT_PER_MM, FieldSpec, LabelTemplate, QrSpec, Slot

_GUIDE_GREY = 0.6
_GUIDE_WIDTH = 0.3  # points: visible for cutting and placing, too thin to matter on the label


@dataclass(frozen=True)
class RenderedLabels:
    """The PDF, its page count, and what had to be shortened (only with overflow = ellipsize)."""

    pdf: bytes
    pages: int
    warnings: tuple[str, ...]


def render_label(template: LabelTemplate, contents: Sequence[LabelContent]) -> bytes:
    """Render one label per content into the template's slots, adding pages as needed."""
    return render_labels(template, contents).pdf


def render_labels(template: LabelTemplate, contents: Sequence[LabelContent]) -> RenderedLabels:
    """Like `render_label`, also returning the page count and the warnings."""
    if not contents:
        raise LabelError("no label contents to render")
    buffer = io.BytesIO()
    # invariant: no creation date or random ID, so the same contents give the same bytes.
    canvas = Canvas(
        buffer,
        pagesize=(template.page_width_mm * PT_PER_MM, template.page_height_mm * PT_PER_MM),
        invariant=True,
    )
    canvas.setTitle(f"Disc labels ({template.title})")
    canvas.setCreator("trialship")
    warnings: list[str] = []
    per_page = len(template.slots)
    for index, content in enumerate(contents):
        if index and index % per_page == 0:
            canvas.showPage()
        slot = template.slots[index % per_page]
        label_warnings = _draw_label(canvas, template, slot, content)
        warnings.extend(f"label {index + 1}: {w}" for w in label_warnings)
    canvas.showPage()
    canvas.save()
    pages = math.ceil(len(contents) / per_page)
    return RenderedLabels(buffer.getvalue(), pages, tuple(warnings))


def _draw_label(
    canvas: Canvas, template: LabelTemplate, slot: Slot, content: LabelContent
) -> list[str]:
    canvas.saveState()
    canvas.translate(slot.x_mm * PT_PER_MM, slot.y_mm * PT_PER_MM)
    if template.guides:
        _draw_guides(canvas, template)
    values = content.fields()
    warnings: list[str] = []
    for spec in template.fields:
        warnings.extend(_draw_field(canvas, template, spec, values))
    if template.qr is not None and content.qr_payload:
        _draw_qr(canvas, template.qr, content.qr_payload)
    canvas.restoreState()
    return warnings


def _draw_guides(canvas: Canvas, template: LabelTemplate) -> None:
    canvas.saveState()
    canvas.setStrokeGray(_GUIDE_GREY)
    canvas.setLineWidth(_GUIDE_WIDTH)
    shape = template.shape
    if shape.kind == "disc":
        canvas.circle(0, 0, shape.outer_diameter_mm / 2 * PT_PER_MM, stroke=1, fill=0)
        if shape.hub_diameter_mm:
            canvas.circle(0, 0, shape.hub_diameter_mm / 2 * PT_PER_MM, stroke=1, fill=0)
    else:
        canvas.rect(0, 0, shape.width_mm * PT_PER_MM, shape.height_mm * PT_PER_MM)
    canvas.restoreState()


def _draw_field(
    canvas: Canvas, template: LabelTemplate, spec: FieldSpec, values: Mapping[str, str]
) -> list[str]:
    texts = [line.format_map(values) for line in spec.lines if _filled(line, values)]
    if not texts:
        return []
    ellipsize = template.overflow == "ellipsize"
    try:
        if spec.arc is not None:
            fitted = fit.fit_arc(
                texts[0],
                font=spec.font,
                size=spec.font_size,
                min_size=spec.min_font_size,
                length=min(spec.arc.length_mm, spec.max_width_mm) * PT_PER_MM,
                ellipsize=ellipsize,
            )
        else:
            fitted = fit.fit_lines(
                texts,
                font=spec.font,
                size=spec.font_size,
                min_size=spec.min_font_size,
                max_width=spec.max_width_mm * PT_PER_MM,
                max_lines=spec.max_lines,
                ellipsize=ellipsize,
            )
    except fit.NoFit as exc:
        raise LabelError(
            f"{template.source}: field {spec.name!r}: {exc.text!r} does not fit in "
            f"{spec.max_lines} line(s) of {spec.max_width_mm:g} mm at {spec.min_font_size:g} pt",
            field=spec.name,
        ) from exc
    if spec.arc is not None:
        _draw_arc(canvas, spec, fitted.lines[0])
    else:
        _draw_lines(canvas, spec, fitted.lines)
    if fitted.ellipsized:
        return [f"field {spec.name!r} was shortened to fit: {' '.join(texts)!r}"]
    return []


def _filled(line: str, values: Mapping[str, str]) -> bool:
    """A line is drawn only when every value it references is there."""
    return all(values[name] for _, name, _, _ in string.Formatter().parse(line) if name)


def _draw_lines(canvas: Canvas, spec: FieldSpec, lines: Sequence[fit.Line]) -> None:
    x = spec.x_mm * PT_PER_MM
    y = spec.y_mm * PT_PER_MM
    for i, line in enumerate(lines):
        if i:
            y -= line.size * spec.leading
        canvas.setFont(spec.font, line.size)
        if spec.align == "center":
            canvas.drawCentredString(x, y, line.text)
        elif spec.align == "right":
            canvas.drawRightString(x, y, line.text)
        else:
            canvas.drawString(x, y, line.text)


def _draw_arc(canvas: Canvas, spec: FieldSpec, line: fit.Line) -> None:
    """Place each character on the circle, turned to follow it (no kerning: none is needed)."""
    assert spec.arc is not None
    arc = spec.arc
    radius = arc.radius_mm * PT_PER_MM
    span = arc.length_mm * PT_PER_MM
    total = fit.width(line.text, spec.font, line.size)
    # Distance along the arc to the first character, by the field's alignment.
    offset = {"left": 0.0, "center": (span - total) / 2, "right": span - total}[spec.align]
    direction = -1.0 if arc.clockwise else 1.0
    canvas.setFont(spec.font, line.size)
    for char in line.text:
        w = fit.width(char, spec.font, line.size)
        angle = math.radians(arc.start_deg) + direction * (offset + w / 2) / radius
        canvas.saveState()
        canvas.translate(radius * math.cos(angle), radius * math.sin(angle))
        # Letters stand outwards on a clockwise arc and inwards on a counter-clockwise one.
        canvas.rotate(math.degrees(angle) + (-90 if arc.clockwise else 90))
        canvas.drawCentredString(0, 0, char)
        canvas.restoreState()
        offset += w


def _draw_qr(canvas: Canvas, spec: QrSpec, payload: str) -> None:
    widget = qr_widget(payload)
    x0, y0, x1, y1 = widget.getBounds()
    side = spec.size_mm * PT_PER_MM
    drawing = Drawing(side, side, transform=[side / (x1 - x0), 0, 0, side / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, spec.x_mm * PT_PER_MM, spec.y_mm * PT_PER_MM)


def qr_widget(payload: str) -> QrCodeWidget:
    """The QR code as drawn: level M survives a scratched or smudged print."""
    return QrCodeWidget(payload, barLevel="M")
