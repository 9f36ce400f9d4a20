"""The submissions dashboard in Debian's Chromium against a real server with its worker (as
`trialship serve` runs them): a media user sends an exam to a real sshd, watches the progress
page reach "done" by itself (htmx polling), downloads the receipt; a trial admin adds a rule."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waitress.server import create_server

from tests.conftest import PASSWORD
from tests.integration.exams.exam_samples import SYSTEM
from tests.integration.submissions.submission_samples import import_exam, sftp_destination
from tests.integration.transfer.peers import Sshd
from trialship.app import Runtime, bootstrap
from trialship.registry.models import Role, Trial
from trialship.services.memberships import set_membership
from trialship.web import create_app


@pytest.fixture
def served(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Runtime]]:
    """waitress and the huey consumer (SQLite queue) on the test's data folder."""
    monkeypatch.delenv("TRIALSHIP_QUEUE_URL")
    live = bootstrap({"data_dir": runtime.settings.data_dir})
    consumer = live.queue.create_consumer(workers=1, worker_type="thread")
    consumer.start()
    server = create_server(create_app(runtime=live), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", live
    server.close()
    consumer.stop(graceful=True)
    thread.join(timeout=5)


def _login(page: Any, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_selector("text=Trials")


def test_a_media_user_sends_an_exam_and_watches_it_arrive(
    served: tuple[str, Runtime],
    trial: Trial,
    sshd: Sshd,
    tmp_path: Path,
    make_user: Callable[..., Any],
    browser_page: Any,
) -> None:
    base, live = served
    exam_pk = import_exam(live, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    sftp_destination(live, trial, sshd, remote)
    user = make_user("media@example.org")
    with live.db.unit_of_work() as session:
        set_membership(
            session, SYSTEM, session.merge(trial), session.merge(user), Role.MEDIA, live.today()
        )
    page = browser_page
    _login(page, base, "media@example.org")
    page.goto(f"{base}/trials/{trial.id}")
    page.click("#submissions-link")
    page.select_option("#submit-scope", "exam")
    page.select_option("#submit-exam", str(exam_pk))
    page.click("#submit-button")
    page.wait_for_selector("#submission-state:text('done')", timeout=60_000)
    assert "3 of 3 files" in page.inner_text("#submission-counts")
    assert len(list(remote.rglob("*.dcm"))) == 3
    with page.expect_download() as download:
        page.click("#submission-receipt")
    receipt = json.loads(Path(download.value.path()).read_text())
    assert receipt["payload"]["kind"] == "submission"
    assert page.locator("#rule-form").count() == 0  # rules are for trial admins
    page.click("#to-submissions")
    assert "done" in page.inner_text("#submissions-table")
    docs_shot = os.environ.get("TRIALSHIP_SUBMISSIONS_SCREENSHOT")
    if (
        docs_shot
    ):  # `TRIALSHIP_SUBMISSIONS_SCREENSHOT=docs/submissions.png ./scripts/test -k dashboard`
        page.screenshot(path=docs_shot, full_page=False)
