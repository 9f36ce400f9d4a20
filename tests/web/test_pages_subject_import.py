"""CSV import of subjects: preview with row errors, then all or nothing."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token, login
from trialship.registry.models import Subject
from trialship.services import trials

GOOD = (
    "subject_id,site_id,reading_id,status,consent_distribution,baseline_date,identifiers\n"
    "S-001,BER,R-1,enrolled,yes,2024-01-15,MRN0001|HOSP-A\n"
    "S-002,BER,,screening,no,,MRN0002|HOSP-A; 77|HOSP-B\n"
    "S-003,,,,,,\n"
)


def upload(client: FlaskClient, trial_id: int, data: bytes, name: str = "subjects.csv"):
    return client.post(
        f"/trials/{trial_id}/subjects/import",
        data={"csrf_token": csrf_token(client, "/"), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def commit_token(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "no import button on the preview"
    return match.group(1)


def import_commit(client: FlaskClient, trial_id: int, token: str):
    return client.post(
        f"/trials/{trial_id}/subjects/import/commit",
        data={"csrf_token": csrf_token(client, "/"), "token": token},
    )


@pytest.fixture
def trial(make_trial, runtime):
    trial = make_trial("ONC-7")
    with runtime.db.unit_of_work() as session:
        trials.add_site(session, SYSTEM, session.merge(trial), {"site_id": "BER"}, runtime.today())
    return trial


def subject_ids(runtime, trial) -> set[str]:
    with runtime.db.unit_of_work() as session:
        return {s.subject_id for s in session.query(Subject).filter_by(trial_id=trial.id)}


def test_import_page_documents_the_columns_and_offers_an_example(admin_client, trial):
    page = admin_client.get(f"/trials/{trial.id}/subjects/import").get_data(as_text=True)
    for column in ("subject_id", "site_id", "reading_id", "status", "consent_distribution"):
        assert f"<code>{column}</code>" in page
    assert "<code>baseline_date</code>" in page and "<code>identifiers</code>" in page
    example = admin_client.get(f"/trials/{trial.id}/subjects/import/example.csv")
    assert example.mimetype == "text/csv"
    assert "attachment" in example.headers["Content-Disposition"]
    # The example itself imports cleanly.
    preview = upload(admin_client, trial.id, example.data).get_data(as_text=True)
    assert 'id="import-commit"' in preview and "Import 2 subjects" in preview


def test_preview_then_commit_imports_every_row(admin_client, trial, runtime) -> None:
    response = upload(admin_client, trial.id, GOOD.encode())
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Import 3 subjects" in page and page.count('class="row-ok"') == 3
    assert "MRN0001" not in page and "77|HOSP-B" not in page  # only counts of identifiers
    assert subject_ids(runtime, trial) == set()  # a preview saves nothing
    token = commit_token(page)
    uploads = runtime.settings.data_dir / "uploads"
    assert len(list(uploads.iterdir())) == 1

    response = import_commit(admin_client, trial.id, token)
    assert response.status_code == 302
    assert subject_ids(runtime, trial) == {"S-001", "S-002", "S-003"}
    assert list(uploads.iterdir()) == []  # the upload is deleted after the commit
    assert "3 subjects imported." in admin_client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    # The token was used up: a second commit is refused and imports nothing twice.
    response = import_commit(admin_client, trial.id, token)
    assert response.status_code == 410
    assert "upload it again" in response.get_data(as_text=True)


def test_one_bad_row_blocks_the_whole_import(admin_client, trial, runtime) -> None:
    data = GOOD + "S\\004,NOPE,,unknown,,2024-13-01,\nS-001,,,,,,\n"
    page = upload(admin_client, trial.id, data.encode()).get_data(as_text=True)
    assert 'id="import-commit"' not in page and 'id="import-blocked"' in page
    assert '<strong class="error-count">2</strong>' in page
    assert "line 5: subject_id: must not contain a backslash" in page
    assert "line 6: subject_id: subject S-001 exists already in this trial" in page
    assert subject_ids(runtime, trial) == set()
    # A forged commit without a preview token saves nothing either.
    response = import_commit(admin_client, trial.id, "not-a-token")
    assert response.status_code == 410
    assert subject_ids(runtime, trial) == set()


def test_commit_refuses_when_a_row_became_invalid_since_the_preview(admin_client, trial, runtime):
    token = commit_token(upload(admin_client, trial.id, GOOD.encode()).get_data(as_text=True))
    admin_client.post(
        f"/trials/{trial.id}/subjects/new",
        data={"csrf_token": csrf_token(admin_client, "/"), "subject_id": "S-003"},
    )
    response = import_commit(admin_client, trial.id, token)
    assert response.status_code == 409
    assert "subject S-003 exists already" in response.get_data(as_text=True)
    assert subject_ids(runtime, trial) == {"S-003"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"subject,site\nS-1,BER\n", "file: has wrong columns; unknown: subject, site; missing"),
        (b"subject_id\nS-\xe9001\n", "file: is not UTF-8 text (byte 0xe9"),
        (b"", "file: is empty"),
        (b"subject_id,site_id\n", "file: has a header but no rows"),
        (
            b"subject_id\n" + b"".join(b"S-%05d\n" % i for i in range(20_001)),
            "file: has more than 20,000 rows; split it",
        ),
    ],
    ids=["wrong-columns", "not-utf8", "empty", "no-rows", "20001-rows"],
)
def test_whole_file_problems_are_shown_and_nothing_is_saved(
    admin_client, trial, runtime, data, message
) -> None:
    response = upload(admin_client, trial.id, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The file cannot be imported." in page and message in page
    assert 'id="file" accept=".csv,text/csv" aria-invalid="true"' in page
    assert subject_ids(runtime, trial) == set()


def test_upload_without_a_file_asks_for_one(admin_client, trial) -> None:
    response = admin_client.post(
        f"/trials/{trial.id}/subjects/import", data={"csrf_token": csrf_token(admin_client, "/")}
    )
    assert response.status_code == 422
    assert "choose a CSV file" in response.get_data(as_text=True)


def test_a_viewer_cannot_import(client, make_user, trial) -> None:
    make_user("v@example.org", trial=trial, role="viewer")
    login(client, "v@example.org")
    assert client.get(f"/trials/{trial.id}/subjects/import").status_code == 403
    assert upload(client, trial.id, GOOD.encode()).status_code == 403
