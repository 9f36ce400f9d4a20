"""Previews rendered by many threads at once (the web server's threads, one page showing
several labels): PDFium is not thread-safe and crashed the process until calls were serialised."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.unit.labels.label_samples import HIRO
from trialship.labels import load_template, preview_png, render_labels


def test_previews_rendered_at_once_by_eight_threads_are_all_the_same_png() -> None:
    pdfs = [render_labels(load_template(name), [HIRO]).pdf for name in ("cd_face", "a4_two_up")]
    expected = [preview_png(pdf, dpi=60) for pdf in pdfs]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: preview_png(pdfs[n % 2], dpi=60), range(64)))
    assert results == [expected[n % 2] for n in range(64)]
