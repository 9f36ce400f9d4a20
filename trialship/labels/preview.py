"""PNG previews of rendered labels (pypdfium2), for the web UI."""

from __future__ import annotations

import io

from trialship.labels.errors import LabelError


def preview_png(pdf: bytes, *, dpi: int = 100, page: int = 0) -> bytes:
    """Rasterise one page of a label PDF to PNG at `dpi` (the page size in inches times dpi)."""
    # Imported here: rendering labels must not need the rasteriser, only previews do.
    import pypdfium2

    if dpi <= 0:
        raise LabelError(f"dpi must be positive, not {dpi}", field="dpi")
    try:
        document = pypdfium2.PdfDocument(pdf)
    except pypdfium2.PdfiumError as exc:
        raise LabelError(f"not a readable PDF: {exc}") from exc
    try:
        if not 0 <= page < len(document):
            raise LabelError(f"page {page} does not exist (the PDF has {len(document)})")
        bitmap = document[page].render(scale=dpi / 72)
        image = bitmap.to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", dpi=(dpi, dpi))
        return out.getvalue()
    finally:
        document.close()
