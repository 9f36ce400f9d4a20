"""PNG previews of rendered labels (pypdfium2), for the web UI."""

from __future__ import annotations

import io
import threading

from trialship.labels.errors import LabelError

# PDFium is not thread-safe: two previews rendered at once (a page showing two labels, served
# by two of the web server's threads) crashed the process. One at a time, in this process.
_PDFIUM = threading.Lock()


def preview_png(pdf: bytes, *, dpi: int = 100, page: int = 0) -> bytes:
    """Rasterise one page of a label PDF to PNG at `dpi` (the page size in inches times dpi)."""
    # Imported here: rendering labels must not need the rasteriser, only previews do.
    import pypdfium2

    if dpi <= 0:
        raise LabelError(f"dpi must be positive, not {dpi}", field="dpi")
    with _PDFIUM:
        try:
            document = pypdfium2.PdfDocument(pdf)
        except pypdfium2.PdfiumError as exc:
            raise LabelError(f"not a readable PDF: {exc}") from exc
        try:
            if not 0 <= page < len(document):
                raise LabelError(f"page {page} does not exist (the PDF has {len(document)})")
            image = document[page].render(scale=dpi / 72).to_pil()
        finally:
            document.close()
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()
