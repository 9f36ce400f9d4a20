"""A media user's disc day, in a real Chromium against a real server with its job worker:
choose exams, read the plan, build, watch the progress page reach done, preview the label,
download the ISO image."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.integration.discs.disc_samples import imported_trial, real_tools
from trialship.app import Runtime
from trialship.registry.discs import Disc
from trialship.registry.models import Role


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[None]:
    """The huey consumer `trialship serve` runs, here on threads of the test process."""
    consumer = runtime.queue.create_consumer(workers=1, worker_type="thread")
    consumer.start()
    yield
    consumer.stop(graceful=True)


def test_media_user_builds_a_disc_set_and_downloads_its_image(
    runtime: Runtime,
    tmp_path: Path,
    make_user: Callable[..., Any],
    worker: None,
    live_server: str,
    browser_page: Any,
) -> None:
    real_tools()
    trial = imported_trial(runtime, tmp_path)  # three de-identified exams, two subjects
    make_user("media@example.org", trial=trial, role=Role.MEDIA)
    page = browser_page

    page.goto(live_server + "/")
    page.fill("input[name=email]", "media@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_selector("text=Trials")

    page.goto(f"{live_server}/trials/{trial.id}/discs")
    boxes = page.locator("#disc-exams input[name=exam_ids]")
    assert boxes.count() == 3
    for n in range(boxes.count()):
        assert boxes.nth(n).is_checked()  # every eligible exam is chosen by default
    page.select_option("#policy", "subject")
    page.click("#plan-discs")
    page.wait_for_selector("#plan-table")
    assert "Load 2 blank CD-R" in page.inner_text("#load-hint")
    assert page.locator("#plan-table tbody tr").count() == 2

    page.click("#build-discs")
    page.wait_for_selector("#job-title")
    assert "Disc build" in page.inner_text("#job-title")
    # The worker builds while the page polls (htmx, every second) until the job is done.
    page.wait_for_selector("#job-state:text('done')", timeout=60_000)
    assert "2 cd80 discs ready" in page.inner_text("#job-message")

    page.click("#to-discs")
    with runtime.db.unit_of_work() as session:
        discs = list(session.query(Disc).order_by(Disc.index))
        first = (discs[0].id, discs[0].image_bytes, discs[0].fileset_id)
    assert len(discs) == 2
    label = page.locator(f"img[alt='Label of {first[2]}']")
    label.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=label.element_handle()
    )

    with page.expect_download() as download:
        page.click(f"#iso-{first[0]}")
    saved = tmp_path / "downloaded.iso"
    download.value.save_as(saved)
    data = saved.read_bytes()
    assert len(data) == first[1] and data[0x8001:0x8006] == b"CD001"
    assert download.value.suggested_filename == "DISC001.iso"
    page.screenshot(path=str(tmp_path / "discs.png"), full_page=True)
