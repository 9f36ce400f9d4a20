"""A coordinator uploads a zip of exams in Chromium: the page shows how much has been sent, then
the job's page, where the import finishes; a bad upload comes back with its reason."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.integration.exams.exam_samples import exam_instance, seed_trial
from trialship.app import Runtime
from trialship.registry.models import Role

# What the page showed while it sent, kept across the navigation that follows (test only).
RECORD_PROGRESS = """
document.addEventListener("DOMContentLoaded", function () {
  var bar = document.getElementById("upload-progress");
  if (!bar) { return; }
  new MutationObserver(function () {
    sessionStorage.setItem("progress", bar.value + "/" + bar.max + " " + !bar.hidden);
    sessionStorage.setItem("text", document.getElementById("upload-progress-text").textContent);
  }).observe(bar, {attributes: true});
});
"""


@pytest.fixture(autouse=True)
def _inline_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_QUEUE_URL", "memory:")


def _zip(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(1, count + 1):
            ds = exam_instance(number)
            ds.PixelData = bytes(range(256)) * 2048  # 512 KB each: an upload worth watching
            ds.Rows, ds.Columns = 512, 512
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            archive.writestr(f"study/img{number}.dcm", out.getvalue())
    return buffer.getvalue()


def test_the_upload_shows_its_progress_then_the_job(
    live_server: str,
    browser_page: Any,
    runtime: Runtime,
    make_user: Callable[..., Any],
    tmp_path: Any,
) -> None:
    trial = seed_trial(runtime)
    make_user("coord@example.org", trial=trial, role=Role.COORDINATOR)
    archive = tmp_path / "exams.zip"
    archive.write_bytes(_zip(8))
    page = browser_page
    page.add_init_script(RECORD_PROGRESS)
    page.goto(live_server + "/")
    page.fill("input[name=email]", "coord@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.goto(f"{live_server}/trials/{trial.id}/imports/new")

    page.click("#start-import")  # nothing chosen: the reason, on the same form
    page.wait_for_selector("#form-error")
    assert "choose one or more DICOM files" in page.inner_text("#form-error")

    page.set_input_files("#files", str(archive))
    page.click("#start-import")
    page.wait_for_selector("#job-state")
    page.wait_for_function("document.getElementById('job-state').textContent.includes('done')")
    assert "8 imported" in page.content()
    sent = page.evaluate("sessionStorage.getItem('progress')")
    value, rest = sent.split("/")
    total, shown = rest.split()
    assert shown == "true" and int(value) == int(total) >= archive.stat().st_size
    assert page.evaluate("sessionStorage.getItem('text')").endswith("(100%)")
