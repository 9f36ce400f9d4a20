"""Exam import through the web and the API: upload, the queued job, exams, key, receipt."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import SYSTEM, csrf_token, login
from tests.integration.exams.exam_samples import PHI, exam_instance, seed_trial
from trialship.app import Runtime
from trialship.deid.receipt import verify_receipt
from trialship.registry.models import AuditEvent, Exam, Role, TimePoint, Trial, User
from trialship.services import users
from trialship.signing import load_or_create_signing_key


@pytest.fixture(autouse=True)
def _inline_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_QUEUE_URL", "memory:")


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)


def dicom_bytes(number: int, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    exam_instance(number, **kwargs).save_as(buffer, enforce_file_format=True)  # type: ignore[arg-type]
    return buffer.getvalue()


def zip_of(count: int, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(1, count + 1):
            archive.writestr(f"study/img{n}.dcm", dicom_bytes(n, **kwargs))
    return buffer.getvalue()


def as_member(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, role: Role
) -> FlaskClient:
    make_user(f"{role.value}@example.org", trial=trial, role=role)
    login(client, f"{role.value}@example.org")
    return client


def upload(client: FlaskClient, trial: Trial, files: list[tuple[bytes, str]], **form: str):
    data: dict[str, object] = {"csrf_token": csrf_token(client, "/"), **form}
    data["files"] = [(io.BytesIO(blob), name) for blob, name in files]
    return client.post(
        f"/trials/{trial.id}/imports/new", data=data, content_type="multipart/form-data"
    )


def test_coordinator_uploads_files_the_job_runs_and_the_exams_list_shows_them(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    assert client.get(f"/trials/{trial.id}/imports/new").status_code == 200
    response = upload(client, trial, [(dicom_bytes(1), "a.dcm"), (dicom_bytes(2), "b.dcm")])
    assert response.status_code == 302
    job_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="job-state">done' in job_page and "2 imported" in job_page
    fragment = client.get(response.headers["Location"], headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    exams_page = client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    assert "SUBJ-001" in exams_page and "deidentified" in exams_page and "BL" in exams_page
    assert PHI["patient_id"] not in exams_page
    completeness = client.get(f"/trials/{trial.id}/completeness").get_data(as_text=True)
    assert 'data-state="received" data-subject="SUBJ-001" data-timepoint="BL"' in completeness


def test_a_zip_with_an_unknown_patient_lands_in_quarantine(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    upload(client, trial, [(zip_of(2, patient_id="NOBODY-1"), "exam.zip")])
    page = client.get(f"/trials/{trial.id}/quarantine").get_data(as_text=True)
    assert page.count("no subject of the trial") == 2
    assert "NOBODY-1" not in page


def test_upload_without_files_is_refused_with_the_reason(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    response = upload(client, trial, [])
    assert response.status_code == 422 and "choose one or more" in response.get_data(as_text=True)


def test_coordinator_confirms_an_unconfirmed_time_point(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    upload(client, trial, [(dicom_bytes(1, study_date="20240301"), "a.dcm")])
    page = client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    assert "(unconfirmed)" in page
    with runtime.db.unit_of_work() as session:
        exam_id = session.scalars(select(Exam.id)).one()
        bl = session.scalars(select(TimePoint.id).where(TimePoint.timepoint_id == "BL")).one()
    response = client.post(
        f"/trials/{trial.id}/exams/{exam_id}/timepoint",
        data={"csrf_token": csrf_token(client, "/"), "timepoint_pk": str(bl)},
    )
    assert response.status_code == 302
    page = client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    assert "(unconfirmed)" not in page and "BL confirmed" in page


def test_the_key_is_refused_to_a_coordinator_and_audited_for_a_trial_admin(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    upload(client, trial, [(dicom_bytes(1), "a.dcm")])
    assert client.get(f"/trials/{trial.id}/key").status_code == 403
    assert client.get(f"/trials/{trial.id}/key.csv").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    as_member(client, make_user, trial, Role.TRIAL_ADMIN)
    page = client.get(f"/trials/{trial.id}/key").get_data(as_text=True)
    assert PHI["patient_id"] in page and "SUBJ-001" in page
    export = client.get(f"/trials/{trial.id}/key.csv")
    assert export.mimetype == "text/csv" and PHI["accession"] in export.get_data(as_text=True)
    with runtime.db.unit_of_work() as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("exam.key%")))
        )
        details = list(session.scalars(select(AuditEvent.details)))
    assert sorted(actions) == ["exam.key_export", "exam.key_view"]
    assert all(PHI["patient_id"] not in str(d) for d in details)


def test_receipt_download_verifies(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    upload(client, trial, [(dicom_bytes(1), "a.dcm")])
    page = client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    link = page.split('id="receipt-')[1].split('"')[0]
    response = client.get(f"/trials/{trial.id}/exams/{link}/receipt.json")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    key = load_or_create_signing_key(runtime.settings.data_dir)
    assert verify_receipt(response.get_json(), key.public_key())


# -- the API -------------------------------------------------------------------------------


@pytest.fixture
def token(runtime: Runtime, make_user: Callable[..., User], trial: Trial) -> dict[str, str]:
    user = make_user("robot@example.org", trial=trial, role=Role.COORDINATOR)
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, user, "robot")
    return {"Authorization": f"Bearer {plain}"}


def test_api_import_of_a_zip_body_returns_202_and_the_job(
    client: FlaskClient, trial: Trial, token: dict[str, str], runtime: Runtime
) -> None:
    response = client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data=zip_of(3),
        headers={**token, "Content-Type": "application/zip"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert job["kind"] == "import"
    polled = client.get(response.headers["Location"], headers=token).get_json()
    assert polled["state"] == "done" and polled["done"] == 3 and polled["total"] == 3
    listing = client.get(f"/api/v1/trials/{trial.id}/exams", headers=token).get_json()
    (exam,) = listing["items"]
    assert exam["subject_id"] == "SUBJ-001" and exam["file_count"] == 3
    assert exam["study_instance_uid"].startswith("2.25.")
    one = client.get(f"/api/v1/trials/{trial.id}/exams/{exam['id']}", headers=token).get_json()
    assert one["series"][0]["instances"] == 3
    receipt = client.get(
        f"/api/v1/trials/{trial.id}/exams/{exam['id']}/receipt", headers=token
    ).get_json()
    key = load_or_create_signing_key(runtime.settings.data_dir)
    assert verify_receipt(receipt, key.public_key())


def test_api_import_of_multipart_files_with_an_explicit_subject(
    client: FlaskClient, trial: Trial, token: dict[str, str]
) -> None:
    response = client.post(
        f"/api/v1/trials/{trial.id}/imports?subject_id=SUBJ-002&timepoint_id=W12",
        data={"files": [(io.BytesIO(dicom_bytes(1, patient_id="X-1")), "one.dcm")]},
        headers=token,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    (exam,) = client.get(f"/api/v1/trials/{trial.id}/exams", headers=token).get_json()["items"]
    assert exam["subject_id"] == "SUBJ-002" and exam["timepoint_id"] == "W12"


def test_api_import_refuses_other_body_types_and_unknown_subjects(
    client: FlaskClient, trial: Trial, token: dict[str, str]
) -> None:
    bad_type = client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data="x",
        headers={**token, "Content-Type": "text/plain"},
    )
    assert bad_type.status_code == 415
    unknown = client.post(
        f"/api/v1/trials/{trial.id}/imports?subject_id=NOPE",
        data=zip_of(1),
        headers={**token, "Content-Type": "application/zip"},
    )
    assert unknown.status_code == 404 and unknown.get_json()["error"]["field"] == "subject_id"


def _api_token(runtime: Runtime, make_user: Callable[..., User], trial: Trial, role: Role):
    user = make_user(f"{role.value}-robot@example.org", trial=trial, role=role)
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, user, role.value)
    return {"Authorization": f"Bearer {plain}"}


def test_api_confirms_a_time_point_and_records_the_pixel_review(
    client: FlaskClient, trial: Trial, token: dict[str, str], runtime: Runtime
) -> None:
    body = io.BytesIO(dicom_bytes(1, study_date="20240301"))
    client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data=body.getvalue(),
        headers={**token, "Content-Type": "application/dicom"},
    )
    (exam,) = client.get(f"/api/v1/trials/{trial.id}/exams", headers=token).get_json()["items"]
    assert exam["timepoint_confirmed"] is False
    url = f"/api/v1/trials/{trial.id}/exams/{exam['id']}"
    unknown = client.post(f"{url}/timepoint", json={"timepoint_id": "NOPE"}, headers=token)
    assert unknown.status_code == 404
    missing = client.post(f"{url}/timepoint", json={}, headers=token)
    assert missing.status_code == 422 and missing.get_json()["error"]["field"] == "timepoint_id"
    confirmed = client.post(f"{url}/timepoint", json={"timepoint_id": "W12"}, headers=token)
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    assert confirmed.get_json()["timepoint_id"] == "W12"
    assert confirmed.get_json()["timepoint_confirmed"] is True
    receipt = client.get(f"{url}/receipt", headers=token).get_json()
    assert verify_receipt(
        receipt, load_or_create_signing_key(runtime.settings.data_dir).public_key()
    )
    reviewed = client.post(f"{url}/pixel-review", headers=token)
    assert reviewed.status_code == 200 and reviewed.get_json()["pixel_reviewed_at"]


def test_api_lists_the_quarantine_with_reasons_and_no_names(
    client: FlaskClient, trial: Trial, token: dict[str, str]
) -> None:
    client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data={"files": [(io.BytesIO(b"not dicom at all"), f"{PHI['patient_id']}.dcm")]},
        headers=token,
        content_type="multipart/form-data",
    )
    response = client.get(f"/api/v1/trials/{trial.id}/quarantine", headers=token)
    assert response.status_code == 200
    (item,) = response.get_json()["items"]
    assert item["reason"].startswith("not DICOM") and item["original_kept"] is True
    assert PHI["patient_id"] not in response.get_data(as_text=True)


def test_api_key_is_for_trial_admins_and_each_read_is_audited(
    client: FlaskClient,
    trial: Trial,
    token: dict[str, str],
    runtime: Runtime,
    make_user: Callable[..., User],
) -> None:
    client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data=zip_of(1),
        headers={**token, "Content-Type": "application/zip"},
    )
    assert client.get(f"/api/v1/trials/{trial.id}/key", headers=token).status_code == 403
    admin = _api_token(runtime, make_user, trial, Role.TRIAL_ADMIN)
    entries = client.get(f"/api/v1/trials/{trial.id}/key", headers=admin)
    assert entries.status_code == 200 and entries.headers["Cache-Control"] == "no-store"
    assert PHI["patient_id"] in {row["original"] for row in entries.get_json()["items"]}
    export = client.get(f"/api/v1/trials/{trial.id}/key?format=csv", headers=admin)
    assert export.mimetype == "text/csv" and PHI["accession"] in export.get_data(as_text=True)
    with runtime.db.unit_of_work() as session:
        actions = sorted(
            session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("exam.key%")))
        )
    assert actions == ["exam.key_export", "exam.key_view"]


def test_uploading_the_same_zip_again_quarantines_nothing_new(
    client: FlaskClient, trial: Trial, token: dict[str, str], runtime: Runtime
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.dcm", dicom_bytes(1))
        archive.writestr("notes.txt", "not dicom")
        archive.writestr("ok.dcm", dicom_bytes(2))
    for _ in range(2):
        response = client.post(
            f"/api/v1/trials/{trial.id}/imports",
            data=buffer.getvalue(),
            headers={**token, "Content-Type": "application/zip"},
        )
        assert response.status_code == 202
    listing = client.get(f"/api/v1/trials/{trial.id}/quarantine", headers=token).get_json()
    reasons = sorted(item["reason"] for item in listing["items"])
    assert len(reasons) == 2, reasons
    assert any("'..'" in reason for reason in reasons)
