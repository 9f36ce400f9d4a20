"""The same submission through the three faces, to a real sshd: the web dashboard (submit,
progress page, receipt, a rule), the API (202 + poll, receipt, jobs) and the command line
(`submit`, `submission`, `rule`, `jobs`, `receipt verify`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token
from tests.integration.submissions.submission_samples import import_exam, sftp_destination
from tests.integration.transfer.peers import Sshd
from trialship.app import Runtime
from trialship.cli import main
from trialship.deid.receipt import verify_receipt
from trialship.registry.models import Trial, User
from trialship.services import users
from trialship.signing import load_or_create_signing_key


def _folder(remote: Path, exam_pk: int) -> Path:
    return remote / "ACM-301" / "S01" / "SUBJ-001" / "BL" / f"CT_{exam_pk:06d}"


def test_the_web_dashboard_submits_shows_progress_and_the_receipt(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path, admin_client: FlaskClient
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    dest_pk = sftp_destination(runtime, trial, sshd, remote)
    page = admin_client.get(f"/trials/{trial.id}/submissions")
    assert page.status_code == 200 and f'value="{exam_pk}"' in page.get_data(as_text=True)
    assert f'id="waiting-{exam_pk}"' in page.get_data(as_text=True)
    token = csrf_token(admin_client, f"/trials/{trial.id}/submissions")
    sent = admin_client.post(
        f"/trials/{trial.id}/submissions",
        data={"csrf_token": token, "scope": "exam", "exam": exam_pk, "destination": dest_pk},
    )
    assert sent.status_code == 302, sent.get_data(as_text=True)[:500]
    shown = admin_client.get(sent.headers["Location"]).get_data(as_text=True)
    assert 'id="submission-state">done<' in shown and "3 of 3 files" in shown
    assert len(list(_folder(remote, exam_pk).rglob("*.dcm"))) == 3
    receipt_url = re.search(r'href="([^"]+receipt\.json)"', shown)
    assert receipt_url
    document = admin_client.get(receipt_url.group(1)).get_json()
    key = load_or_create_signing_key(runtime.settings.data_dir).public_key()
    assert verify_receipt(document, key) and document["payload"]["kind"] == "submission"
    listed = admin_client.get(f"/trials/{trial.id}/submissions").get_data(as_text=True)
    assert "submissions-table" in listed and "done" in listed
    assert f'id="waiting-{exam_pk}"' not in listed and "nothing-waiting" in listed
    exams_page = admin_client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    assert f'<td id="sent-{exam_pk}"><span class="state-done">sponsor: done</span>' in exams_page
    added = admin_client.post(
        f"/trials/{trial.id}/submissions/rules",
        data={"csrf_token": token, "destination": dest_pk, "mode": "daily", "daily_at": "25:00"},
    )
    assert added.status_code == 422 and "HH:MM" in added.get_data(as_text=True)
    added = admin_client.post(
        f"/trials/{trial.id}/submissions/rules",
        data={"csrf_token": token, "destination": dest_pk, "mode": "daily", "daily_at": "18:30"},
    )
    assert added.status_code == 302
    assert "daily at 18:30" in admin_client.get(f"/trials/{trial.id}/submissions").get_data(
        as_text=True
    )


def test_the_api_submits_polls_and_retries_nothing_twice(
    runtime: Runtime,
    trial: Trial,
    sshd: Sshd,
    tmp_path: Path,
    client: FlaskClient,
    make_user: object,
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    sftp_destination(runtime, trial, sshd, tmp_path / "remote")
    user: User = make_user("api@example.org", admin=True)  # type: ignore[operator]
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, user, "script")
    auth = {"Authorization": f"Bearer {plain}"}
    base = f"/api/v1/trials/{trial.id}"
    bad = client.post(f"{base}/submissions", json={"destination": "sponsor"}, headers=auth)
    assert bad.status_code == 422
    created = client.post(
        f"{base}/submissions", json={"destination": "sponsor", "exam_id": exam_pk}, headers=auth
    )
    assert created.status_code == 202, created.get_json()
    polled = client.get(created.headers["Location"], headers=auth).get_json()
    assert polled["state"] == "done" and polled["files"] == {"pending": 0, "sent": 3, "failed": 0}
    assert polled["progress"]["percent"] == 100.0
    receipt = client.get(f"{created.headers['Location']}/receipt", headers=auth).get_json()
    assert len(receipt["payload"]["outputs"]) == 3
    again = client.post(f"{created.headers['Location']}/retry", headers=auth)
    assert again.status_code == 409
    jobs = client.get("/api/v1/jobs", headers=auth).get_json()["items"]
    assert any(j["kind"] == "submission" and j["state"] == "done" for j in jobs)
    rule = client.post(f"{base}/rules", json={"destination": "sponsor"}, headers=auth)
    assert rule.status_code == 201 and rule.get_json()["mode"] == "on_ready"
    off = client.patch(
        f"{base}/rules/{rule.get_json()['id']}", json={"enabled": False}, headers=auth
    )
    assert off.get_json()["enabled"] is False


def test_the_command_line_submits_lists_and_verifies_the_receipt(
    runtime: Runtime, trial: Trial, sshd: Sshd, tmp_path: Path
) -> None:
    exam_pk = import_exam(runtime, trial, tmp_path / "in")
    remote = tmp_path / "remote"
    sftp_destination(runtime, trial, sshd, remote)
    data = str(runtime.settings.data_dir)

    def cli(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--data", data, *args])
        return result.exit_code, result.output

    code, out = cli(
        "submit", "--trial", "ACM-301", "--destination", "sponsor", "--exam", str(exam_pk)
    )
    assert code == 0 and ": done: 3 files confirmed by sponsor" in out, out
    assert len(list(_folder(remote, exam_pk).rglob("*.dcm"))) == 3
    code, out = cli("submission", "list", "--trial", "ACM-301")
    assert code == 0 and "done" in out and "3/3" in out
    receipt = tmp_path / "receipt.json"
    code, _ = cli("submission", "receipt", "--trial", "ACM-301", "1", "--out", str(receipt))
    assert code == 0 and json.loads(receipt.read_text())["payload"]["kind"] == "submission"
    code, out = cli("receipt", "verify", str(receipt))
    assert code == 0, out
    code, out = cli("jobs", "list", "--trial", "ACM-301")
    assert code == 0 and "submission" in out
    code, out = cli("jobs", "retry", "1")
    assert code != 0 and "nothing to retry" in out
    code, out = cli(
        "rule", "add", "--trial", "ACM-301", "--destination", "sponsor", "--timepoint", "BL"
    )
    assert code == 0 and "Rule 1: exams of time point BL go to sponsor when ready" in out
    code, out = cli("rule", "disable", "--trial", "ACM-301", "1")
    assert code == 0
    code, out = cli("rule", "list", "--trial", "ACM-301")
    assert "no" in out.splitlines()[-1]
    code, out = cli("submit", "--trial", "ACM-301", "--destination", "sponsor")
    assert code == 2 and "give one of" in out
