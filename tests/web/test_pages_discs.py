"""Discs through the web and the API: choose, plan, build with progress, download, burn."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

from tests.conftest import SYSTEM, csrf_token, login
from tests.integration.discs.disc_samples import imported_trial, real_tools
from trialship.app import Runtime
from trialship.registry.models import Role, Trial, User
from trialship.services import users
from trialship.web.api.spec import document


@pytest.fixture(autouse=True)
def _inline_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_QUEUE_URL", "memory:")


@pytest.fixture
def trial(runtime: Runtime, tmp_path: Path) -> Trial:
    return imported_trial(runtime, tmp_path)


@pytest.fixture
def media_client(client: FlaskClient, make_user: Callable[..., User], trial: Trial) -> FlaskClient:
    make_user("media@example.org", trial=trial, role=Role.MEDIA)
    login(client, "media@example.org")
    return client


@pytest.fixture
def token(runtime: Runtime, make_user: Callable[..., User], trial: Trial) -> dict[str, str]:
    user = make_user("robot@example.org", trial=trial, role=Role.MEDIA)
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, session.merge(user), "discs")
    return {"Authorization": f"Bearer {plain}"}


def conforms(name: str, instance: object) -> None:
    schema = {"components": document()["components"], "$ref": f"#/components/schemas/{name}"}
    OAS31Validator(schema).validate(instance)


def test_media_user_plans_then_builds_and_sees_the_disc_with_its_label(
    media_client: FlaskClient, trial: Trial, tmp_path: Path
) -> None:
    real_tools()
    page = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    ids = re.findall(r'name="exam_ids" value="(\d+)"', page)
    assert len(ids) == 3 and 'id="build-discs"' in page
    form = {
        "csrf_token": csrf_token(media_client, "/"),
        "exam_ids": ids,
        "media": "auto",
        "policy": "subject",
        "label_template": "cd_face",
    }
    planned = media_client.post(f"/trials/{trial.id}/discs/plan", data=form)
    text = planned.get_data(as_text=True)
    assert planned.status_code == 200 and 'id="plan-table"' in text
    assert "Load 2 blank CD-R" in text
    built = media_client.post(f"/trials/{trial.id}/discs", data=form)
    assert built.status_code == 302 and "/discs/jobs/" in built.headers["Location"]
    job = media_client.get(built.headers["Location"]).get_data(as_text=True)
    assert 'id="job-state">done' in job and "2 cd80 discs ready" in job
    listing = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    disc_ids = re.findall(r'id="iso-(\d+)"', listing)
    assert len(disc_ids) == 2
    iso = media_client.get(f"/trials/{trial.id}/discs/{disc_ids[0]}/image.iso")
    assert iso.status_code == 200 and iso.data[0x8001:0x8006] == b"CD001"
    pdf = media_client.get(f"/trials/{trial.id}/discs/{disc_ids[0]}/label.pdf")
    assert pdf.data.startswith(b"%PDF")
    png = media_client.get(f"/trials/{trial.id}/discs/{disc_ids[0]}/label.png")
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    device = f"stdio:{tmp_path / 'burned.iso'}"
    burned = media_client.post(
        f"/trials/{trial.id}/discs/{disc_ids[0]}/burn",
        data={"csrf_token": form["csrf_token"], "device": device},
    )
    assert burned.status_code == 302 and "/discs/jobs/" in burned.headers["Location"]
    job_page = media_client.get(burned.headers["Location"]).get_data(as_text=True)
    assert "Disc burn" in job_page and 'id="job-state">done' in job_page
    assert "written and verified" in job_page
    listing = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    assert "· verified" in listing
    failed = media_client.post(
        f"/trials/{trial.id}/discs/{disc_ids[1]}/burn",
        data={"csrf_token": form["csrf_token"], "device": "stdio:/dev/full"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'id="job-state">failed' in failed and "not burned:" in failed
    marked = media_client.post(
        f"/trials/{trial.id}/discs/{disc_ids[1]}/mark-burned",
        data={"csrf_token": form["csrf_token"]},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "recorded as burned" in marked and "not verified" in marked
    # Every exam is on a ready disc now: the default filter offers none.
    again = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    assert 'id="no-exams"' in again


def test_a_viewer_sees_the_discs_page_without_build_or_downloads(
    client: FlaskClient, make_user: Callable[..., User], trial: Trial
) -> None:
    make_user("viewer@example.org", trial=trial, role=Role.VIEWER)
    login(client, "viewer@example.org")
    page = client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    assert 'id="disc-exams"' in page and 'id="build-discs"' not in page


def test_the_api_plans_builds_downloads_and_records_burns(
    client: FlaskClient, token: dict[str, str], trial: Trial, tmp_path: Path
) -> None:
    real_tools()
    base = f"/api/v1/trials/{trial.id}"
    plan = client.post(f"{base}/disc-sets/plan", json={"subject_id": "SUBJ-001"}, headers=token)
    assert plan.status_code == 200, plan.get_data(as_text=True)
    conforms("DiscPlan", plan.get_json())
    assert len(plan.get_json()["discs"]) == 1 and len(plan.get_json()["discs"][0]["exam_ids"]) == 2
    created = client.post(f"{base}/disc-sets", json={"media": "dvd"}, headers=token)
    assert created.status_code == 202, created.get_data(as_text=True)
    body = created.get_json()
    conforms("DiscSet", body)
    job = client.get(f"/api/v1/jobs/{body['job_id']}", headers=token).get_json()
    assert job["state"] == "done" and job["kind"] == "disc_build"
    got = client.get(created.headers["Location"], headers=token).get_json()
    assert got["state"] == "ready" and got["discs"][0]["medium"] == "dvd"
    conforms("DiscSetList", client.get(f"{base}/disc-sets", headers=token).get_json())
    disc = got["discs"][0]
    iso = client.get(f"{base}/discs/{disc['id']}/image.iso", headers=token)
    assert iso.status_code == 200 and len(iso.data) == disc["image_bytes"]
    label = client.get(f"{base}/discs/{disc['id']}/label.pdf", headers=token)
    assert label.data.startswith(b"%PDF")
    failed = client.post(
        f"{base}/discs/{disc['id']}/burn", json={"device": "stdio:/dev/full"}, headers=token
    )
    assert failed.status_code == 202 and failed.headers["Location"].endswith(
        f"/api/v1/jobs/{failed.get_json()['id']}"
    )
    conforms("Job", failed.get_json())
    assert failed.get_json()["kind"] == "disc_burn" and failed.get_json()["state"] == "failed"
    after = client.get(f"{base}/disc-sets/{got['id']}", headers=token).get_json()
    assert after["discs"][0]["burned_at"] is None and after["discs"][0]["burn_message"]
    burned = client.post(
        f"{base}/discs/{disc['id']}/burn",
        json={"device": f"stdio:{tmp_path / 'x.iso'}"},
        headers=token,
    )
    job = client.get(burned.headers["Location"], headers=token).get_json()
    assert job["state"] == "done" and job["message"] == "written and verified"
    after = client.get(f"{base}/disc-sets/{got['id']}", headers=token).get_json()
    assert after["discs"][0]["burned_at"] and after["discs"][0]["burn_verified"]
    assert after["discs"][0]["burned_by"] == "robot@example.org"
    refused = client.post(f"{base}/disc-sets/plan", json={"exam_ids": [999]}, headers=token)
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "exam_ids"


def test_a_failed_set_is_rebuilt_and_another_deleted_from_the_page_and_the_api(
    media_client: FlaskClient,
    runtime: Runtime,
    trial: Trial,
    token: dict[str, str],
) -> None:
    from sqlalchemy import select

    from trialship.registry.imaging import Instance

    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        path = data / session.scalars(select(Instance.path)).first()  # type: ignore[operator]
    original = path.read_bytes()
    path.write_bytes(original + b"\0\0")  # changed since import: the build fails
    csrf = csrf_token(media_client, "/")
    page = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    ids = re.findall(r'name="exam_ids" value="(\d+)"', page)
    form = {"csrf_token": csrf, "exam_ids": ids, "media": "auto", "policy": "pack"}
    form["label_template"] = "cd_face"
    media_client.post(f"/trials/{trial.id}/discs", data=form)
    page = media_client.get(f"/trials/{trial.id}/discs").get_data(as_text=True)
    (set_id,) = re.findall(r'id="rebuild-(\d+)"', page)
    assert 'id="delete-' + set_id + '"' in page and "changed since it was imported" in page
    path.write_bytes(original)
    rebuilt = media_client.post(
        f"/trials/{trial.id}/discs/sets/{set_id}/rebuild", data={"csrf_token": csrf}
    )
    job_page = media_client.get(rebuilt.headers["Location"]).get_data(as_text=True)
    assert 'id="job-state">done' in job_page and "ready" in job_page
    again = media_client.post(
        f"/trials/{trial.id}/discs/sets/{set_id}/delete",
        data={"csrf_token": csrf},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "only a failed set is deleted" in again
    # Through the API: a second set fails, is refused a delete while ready... and deleted.
    base = f"/api/v1/trials/{trial.id}"
    path.write_bytes(original + b"\0\0")
    created = media_client.post(f"{base}/disc-sets", json={"state": "deidentified"}, headers=token)
    assert created.status_code == 202
    second = created.get_json()["id"]
    got = media_client.get(f"{base}/disc-sets/{second}", headers=token).get_json()
    assert got["state"] == "failed"
    assert media_client.post(f"{base}/disc-sets/{set_id}/rebuild", headers=token).status_code == 409
    gone = media_client.delete(f"{base}/disc-sets/{second}", headers=token)
    assert gone.status_code == 204
    assert media_client.get(f"{base}/disc-sets/{second}", headers=token).status_code == 404
