"""The exam page, the profile download, the audit trail over the API, which file the
quarantine refused, RFC 3339 times, and the API refusing what its document does not allow."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tomllib
import zipfile
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from sqlalchemy import func, select

from tests.conftest import SYSTEM
from tests.integration.exams.exam_samples import PHI, seed_trial
from tests.web.test_pages_exam_import import _api_token, as_member, dicom_bytes, upload, zip_of
from trialship.app import Runtime
from trialship.registry.models import AuditEvent, Exam, Role, Trial, User
from trialship.services import users
from trialship.web.api.serialize import iso
from trialship.web.api.spec import document


@pytest.fixture(autouse=True)
def _inline_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_QUEUE_URL", "memory:")


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)


@pytest.fixture
def admin_token(runtime: Runtime, make_user: Callable[..., User], trial: Trial) -> dict[str, str]:
    return _api_token(runtime, make_user, trial, Role.TRIAL_ADMIN)


def _import_zip(client: FlaskClient, trial: Trial, token: dict[str, str], count: int) -> None:
    response = client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data=zip_of(count),
        headers={**token, "Content-Type": "application/zip"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def _conforms(schema_name: str, instance: object) -> None:
    spec = document()
    schema = {"components": spec["components"], "$ref": f"#/components/schemas/{schema_name}"}
    OAS31Validator(schema).validate(instance)


def _key_reads(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        return (
            session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.action.like("exam.key%"))
            )
            or 0
        )


# -- the exam page --------------------------------------------------------------------------


def _viewer_and_an_exam(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> tuple[int, dict[str, str]]:
    """The client logged in as a viewer; an exam of 2 files imported by a coordinator (its id
    and the coordinator's API token)."""
    as_member(client, make_user, trial, Role.VIEWER)
    coordinator = _api_token(runtime, make_user, trial, Role.COORDINATOR)
    _import_zip(client, trial, coordinator, 2)
    with runtime.db.unit_of_work() as session:
        return session.scalars(select(Exam.id)).one(), coordinator


def test_the_exam_page_shows_the_exam_its_series_and_its_receipt_from_the_list(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    exam_id, _ = _viewer_and_an_exam(client, make_user, trial, runtime)
    listing = client.get(f"/trials/{trial.id}/exams").get_data(as_text=True)
    assert f'href="/trials/{trial.id}/exams/{exam_id}"' in listing
    response = client.get(f"/trials/{trial.id}/exams/{exam_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<dd id="exam-subject">SUBJ-001</dd>' in page
    assert '<dd id="exam-timepoint">BL' in page and "(confirmed)" in page
    assert '<dd class="state" id="exam-state">deidentified</dd>' in page
    assert 'id="series-table"' in page and "<td>2</td>" in page
    assert f'href="/trials/{trial.id}/exams/{exam_id}/receipt.json"' in page
    assert PHI["patient_id"] not in page and PHI["accession"] not in page
    assert client.get(f"/trials/{trial.id}/exams/999").status_code == 404


def test_the_attribute_reports_from_the_exam_page_and_the_api(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    exam_id, coordinator = _viewer_and_an_exam(client, make_user, trial, runtime)
    page = client.get(f"/trials/{trial.id}/exams/{exam_id}").get_data(as_text=True)
    assert f'href="/trials/{trial.id}/exams/{exam_id}/report.json"' in page
    from_page = client.get(f"/trials/{trial.id}/exams/{exam_id}/report.json").get_json()
    response = client.get(f"/api/v1/trials/{trial.id}/exams/{exam_id}/report", headers=coordinator)
    assert response.status_code == 200
    document = response.get_json()
    _conforms("AttributeReports", document)
    assert document == from_page
    assert [f["report"] for f in document["files"]] == [0, 0]
    actions = {e["keyword"]: e["action"] for e in document["reports"][0]}
    assert actions["PatientName"] == "replaced" and actions["StudyInstanceUID"] == "remapped"
    assert PHI["patient_id"] not in json.dumps(document)


# -- the profile ----------------------------------------------------------------------------


def test_the_profile_is_downloaded_from_the_trial_page_and_the_api_without_the_secret(
    client: FlaskClient,
    make_user: Callable[..., User],
    trial: Trial,
    runtime: Runtime,
) -> None:
    as_member(client, make_user, trial, Role.VIEWER)
    detail = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert f'href="/trials/{trial.id}/profile.toml"' in detail
    download = client.get(f"/trials/{trial.id}/profile.toml")
    assert download.status_code == 200 and download.mimetype == "application/toml"
    assert 'filename="ACM-301-profile.toml"' in download.headers["Content-Disposition"]
    profile = tomllib.loads(download.get_data(as_text=True))
    assert profile["trial"]["protocol_id"] == "ACM-301"
    assert "uid_secret" not in profile["deid"]
    viewer = _api_token(runtime, make_user, trial, Role.VIEWER)
    api = client.get(f"/api/v1/trials/{trial.id}/profile", headers=viewer)
    assert api.status_code == 200 and api.mimetype == "application/toml"
    assert api.get_data(as_text=True) == download.get_data(as_text=True)
    assert client.get("/api/v1/trials/999/profile", headers=viewer).status_code == 404


# -- the audit trail over the API -----------------------------------------------------------


def test_the_api_audit_trail_filters_as_the_page_and_shows_members_only_their_trials(
    client: FlaskClient,
    make_user: Callable[..., User],
    trial: Trial,
    runtime: Runtime,
    make_trial: Callable[..., Trial],
) -> None:
    other = make_trial("OTHER-1")
    viewer = _api_token(runtime, make_user, trial, Role.VIEWER)
    admin = make_user("root@example.org", admin=True)
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, admin, "root")
    root = {"Authorization": f"Bearer {plain}"}

    everything = client.get("/api/v1/audit", headers=root)
    assert everything.status_code == 200, everything.get_data(as_text=True)
    body = everything.get_json()
    _conforms("AuditEventList", body)
    assert {e["trial_id"] for e in body["items"]} >= {trial.id, other.id}
    assert body["total"] >= len(body["items"])
    assert all(e["at"].endswith("+00:00") for e in body["items"])

    mine = client.get("/api/v1/audit", headers=viewer).get_json()
    assert mine["items"] and {e["trial_id"] for e in mine["items"]} == {trial.id}
    assert client.get(f"/api/v1/audit?trial_id={other.id}", headers=viewer).status_code == 403
    by_user = client.get(f"/api/v1/audit?user_id={admin.id}", headers=viewer)
    assert by_user.status_code == 403 and by_user.get_json()["error"]["field"] == "user_id"

    sites = client.get(f"/api/v1/audit?trial_id={trial.id}&action=site.", headers=root)
    actions = {e["action"] for e in sites.get_json()["items"]}
    assert actions == {"site.create"}
    page = client.get("/api/v1/audit?limit=1&offset=1", headers=root).get_json()
    assert len(page["items"]) == 1 and page["items"][0]["id"] == body["items"][1]["id"]
    bad = client.get("/api/v1/audit?limit=0", headers=root)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "limit"
    assert client.get("/api/v1/audit?trial_id=x", headers=root).status_code == 422


# -- which file the quarantine refused ------------------------------------------------------


def test_the_quarantine_tells_which_file_by_job_and_sha256_never_by_name(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    refused = b"not dicom at all"
    coordinator = _api_token(runtime, make_user, trial, Role.COORDINATOR)
    client.post(
        f"/api/v1/trials/{trial.id}/imports",
        data={"files": [(io.BytesIO(refused), f"{PHI['patient_id']}.dcm")]},
        headers=coordinator,
        content_type="multipart/form-data",
    )
    response = client.get(f"/api/v1/trials/{trial.id}/quarantine", headers=coordinator)
    (item,) = response.get_json()["items"]
    _conforms("QuarantinedFile", item)
    assert item["job_id"] and item["sha256"] == hashlib.sha256(refused).hexdigest()
    assert PHI["patient_id"] not in response.get_data(as_text=True)
    as_member(client, make_user, trial, Role.VIEWER)
    page = client.get(f"/trials/{trial.id}/quarantine").get_data(as_text=True)
    assert f'title="{item["sha256"]}">{item["sha256"][:16]}</code>' in page
    assert f"job {item['job_id']}" in page and PHI["patient_id"] not in page


def test_an_input_refused_unread_has_no_sha256_to_compare(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.dcm", dicom_bytes(1))
    upload(client, trial, [(buffer.getvalue(), "exam.zip")])
    coordinator = _api_token(runtime, make_user, trial, Role.COORDINATOR)
    (item,) = client.get(f"/api/v1/trials/{trial.id}/quarantine", headers=coordinator).get_json()[
        "items"
    ]
    assert "'..'" in item["reason"] and item["sha256"] is None
    page = client.get(f"/trials/{trial.id}/quarantine").get_data(as_text=True)
    assert "not read" in page


def test_the_quarantine_tells_where_in_the_upload_a_file_was_never_by_name(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial, runtime: Runtime
) -> None:
    as_member(client, make_user, trial, Role.COORDINATOR)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Kowalczyk/img1.dcm", dicom_bytes(1))
        archive.writestr("Kowalczyk/notes.txt", b"not dicom")
        archive.writestr(f"../{PHI['patient_id']}.dcm", dicom_bytes(2))
    upload(client, trial, [(dicom_bytes(3), "a.dcm"), (buffer.getvalue(), "exam.zip")])
    coordinator = _api_token(runtime, make_user, trial, Role.COORDINATOR)
    response = client.get(f"/api/v1/trials/{trial.id}/quarantine", headers=coordinator)
    items = response.get_json()["items"]
    for item in items:
        _conforms("QuarantinedFile", item)
    # The first upload is item 1, the zip's entries items 2 to 4 (upload names are not kept);
    # an entry refused unread has its place too.
    assert [(i["item"], i["zip_entry"]) for i in items] == [(4, 3), (3, 2)]
    assert "Kowalczyk" not in response.get_data(as_text=True)
    page = client.get(f"/trials/{trial.id}/quarantine").get_data(as_text=True)
    assert '<td class="position">item 3, zip entry 2</td>' in page
    assert '<td class="position">item 4, zip entry 3</td>' in page
    assert "Kowalczyk" not in page and PHI["patient_id"] not in page


# -- times with their offset ----------------------------------------------------------------


def test_times_are_rfc_3339_with_the_utc_offset_and_dates_stay_dates() -> None:
    assert iso(dt.datetime(2026, 12, 2, 2, 48, 16, 157522)) == "2026-12-02T02:48:16.157522+00:00"
    aware = dt.datetime(2026, 12, 2, 3, 48, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso(aware) == "2026-12-02T02:48:00+00:00"
    assert iso(dt.date(2026, 12, 2)) == "2026-12-02"
    assert iso(None) is None


def test_api_objects_carry_their_times_with_the_offset(
    client: FlaskClient, trial: Trial, admin_token: dict[str, str]
) -> None:
    _import_zip(client, trial, admin_token, 1)
    base = f"/api/v1/trials/{trial.id}"
    got = client.get(base, headers=admin_token).get_json()
    (exam,) = client.get(f"{base}/exams", headers=admin_token).get_json()["items"]
    (job,) = client.get("/api/v1/jobs", headers=admin_token).get_json()["items"]
    for stamp in (got["created_at"], exam["created_at"], job["created_at"], job["finished_at"]):
        assert stamp.endswith("+00:00"), stamp
        assert dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(0)


# -- what the API refuses -------------------------------------------------------------------


def test_confirming_a_time_point_refuses_unknown_fields(
    client: FlaskClient, trial: Trial, admin_token: dict[str, str]
) -> None:
    _import_zip(client, trial, admin_token, 1)
    (exam,) = client.get(f"/api/v1/trials/{trial.id}/exams", headers=admin_token).get_json()[
        "items"
    ]
    url = f"/api/v1/trials/{trial.id}/exams/{exam['id']}/timepoint"
    extra = client.post(url, json={"timepoint_id": "W12", "force": True}, headers=admin_token)
    assert extra.status_code == 422 and extra.get_json()["error"]["field"] == "force"
    not_text = client.post(url, json={"timepoint_id": 12}, headers=admin_token)
    assert not_text.status_code == 422 and not_text.get_json()["error"]["field"] == "timepoint_id"
    unchanged = client.get(f"/api/v1/trials/{trial.id}/exams/{exam['id']}", headers=admin_token)
    assert unchanged.get_json()["timepoint_id"] == exam["timepoint_id"] == "BL"


def test_an_unknown_key_format_is_refused_before_anything_is_read(
    client: FlaskClient, trial: Trial, admin_token: dict[str, str], runtime: Runtime
) -> None:
    _import_zip(client, trial, admin_token, 1)
    before = _key_reads(runtime)
    response = client.get(f"/api/v1/trials/{trial.id}/key?format=xml", headers=admin_token)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "format" and "json, csv" in error["message"]
    assert _key_reads(runtime) == before
    assert client.get(f"/api/v1/trials/{trial.id}/key?format=json", headers=admin_token).is_json
    assert _key_reads(runtime) == before + 1


def test_the_document_describes_the_csv_key_the_profile_and_the_audit_trail() -> None:
    paths = document()["paths"]
    key = paths["/trials/{trial_id}/key"]["get"]
    assert set(key["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "422" in key["responses"]
    profile = paths["/trials/{trial_id}/profile"]["get"]["responses"]["200"]["content"]
    assert set(profile) == {"application/toml"}
    audit = paths["/audit"]["get"]
    assert {p["name"] for p in audit["parameters"]} == {
        "trial_id",
        "user_id",
        "action",
        "limit",
        "offset",
    }
