"""Destinations through the API: each kind, errors naming the field, secrets never returned."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.conftest import SYSTEM
from trialship.app import Runtime
from trialship.registry.models import AuditEvent, Trial, User
from trialship.services import users
from trialship.services.destinations import generate_key_pair

SECRET_PASSWORD = "pw-never-shown-9182"
SECRET_HEADER = "Bearer never-shown-7766"


@pytest.fixture
def token_for(runtime: Runtime, make_user: Callable[..., User]) -> Callable[..., dict[str, str]]:
    def make(email: str, **kwargs: object) -> dict[str, str]:
        user = make_user(email, **kwargs)
        with runtime.db.unit_of_work() as session:
            _, plain = users.create_token(session, SYSTEM, user, "t")
        return {"Authorization": f"Bearer {plain}"}

    return make


def test_create_each_kind_and_never_return_a_secret(
    client: FlaskClient, make_trial: Callable[..., Trial], token_for: Callable[..., dict]
) -> None:
    trial = make_trial("API-D1")
    admin = token_for("ta@example.org", trial=trial, role="trial_admin")
    base = f"/api/v1/trials/{trial.id}/destinations"
    private, public = generate_key_pair("up")
    sftp = client.post(
        base,
        json={
            "name": "sftp",
            "kind": "sftp",
            "host": "h.example.org",
            "username": "u",
            "private_key": private,
            "password": SECRET_PASSWORD,
            "package_form": "zip",
        },
        headers=admin,
    )
    assert sftp.status_code == 201, sftp.get_json()
    body = sftp.get_json()
    assert body["public_key"].split()[:2] == public.split()[:2]
    assert body["private_key_set"] and body["password_set"] and body["host_key"] is None
    dicom = client.post(
        base,
        json={
            "name": "pacs",
            "kind": "dicom",
            "host": "p.example.org",
            "called_aet": "SPONSOR",
            "commitment": True,
        },
        headers=admin,
    )
    assert dicom.status_code == 201 and dicom.get_json()["calling_aet"] == "TRIALSHIP"
    web = client.post(
        base,
        json={
            "name": "web",
            "kind": "dicomweb",
            "base_url": "https://w.example.org/dw",
            "auth_header": SECRET_HEADER,
        },
        headers=admin,
    )
    assert web.status_code == 201 and web.get_json()["auth_header_set"] is True
    listing = client.get(base, headers=admin)
    assert [d["name"] for d in listing.get_json()["items"]] == ["pacs", "sftp", "web"]
    patched = client.patch(f"{base}/{body['id']}", json={"marker": "DONE"}, headers=admin)
    assert patched.status_code == 200 and patched.get_json()["marker"] == "DONE"
    for response in (sftp, dicom, web, listing, patched):
        text = response.get_data(as_text=True)
        assert SECRET_PASSWORD not in text and SECRET_HEADER not in text
        assert private.splitlines()[1] not in text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "kind": "ftp"}, "kind"),
        ({"kind": "dicomweb", "base_url": "http://a"}, "name"),
        ({"name": "x", "kind": "dicomweb"}, "base_url"),
        ({"name": "x", "kind": "dicomweb", "base_url": "ftp://a"}, "base_url"),
        ({"name": "x", "kind": "dicom", "host": "h"}, "called_aet"),
        ({"name": "x", "kind": "dicom", "host": "h", "called_aet": "A" * 17}, "called_aet"),
        ({"name": "x", "kind": "dicom", "host": "h", "called_aet": "A", "port": 70000}, "port"),
        (
            {"name": "x", "kind": "sftp", "host": "h", "username": "u", "remote_path": "{x}/"},
            "remote_path",
        ),
        (
            {"name": "x", "kind": "sftp", "host": "h", "username": "u", "remote_path": "a/../b"},
            "remote_path",
        ),
        (
            {"name": "x", "kind": "sftp", "host": "h", "username": "u", "private_key": "nope"},
            "private_key",
        ),
        (
            {"name": "x", "kind": "sftp", "host": "h", "username": "u", "auth": "password"},
            "password",
        ),
        (
            {"name": "x", "kind": "sftp", "host": "h", "username": "u", "called_aet": "A"},
            "called_aet",
        ),
        ({"name": "x", "kind": "sftp", "host": "h", "username": "u", "marker": "../x"}, "marker"),
        ({"name": "x", "kind": "dicomweb", "base_url": "http://a", "colour": "red"}, "colour"),
    ],
)
def test_validation_errors_name_the_field(
    client: FlaskClient,
    make_trial: Callable[..., Trial],
    token_for: Callable[..., dict],
    payload: dict,
    field: str,
) -> None:
    trial = make_trial("API-D2")
    admin = token_for("admin@example.org", admin=True)
    response = client.post(f"/api/v1/trials/{trial.id}/destinations", json=payload, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_roles_coordinator_refused_and_allow_identified_admin_only(
    client: FlaskClient,
    runtime: Runtime,
    make_trial: Callable[..., Trial],
    token_for: Callable[..., dict],
) -> None:
    trial = make_trial("API-D3")
    base = f"/api/v1/trials/{trial.id}/destinations"
    coordinator = token_for("co@example.org", trial=trial, role="coordinator")
    trial_admin = token_for("ta@example.org", trial=trial, role="trial_admin")
    admin = token_for("root@example.org", admin=True)
    payload = {"name": "web", "kind": "dicomweb", "base_url": "http://w.example.org/dw"}
    assert client.post(base, json=payload, headers=coordinator).status_code == 403
    assert client.get(base, headers=coordinator).status_code == 200
    refused = client.post(base, json={**payload, "allow_identified": True}, headers=trial_admin)
    assert refused.status_code == 403
    created = client.post(base, json=payload, headers=trial_admin)
    assert created.status_code == 201
    url = f"{base}/{created.get_json()['id']}"
    assert (
        client.patch(url, json={"allow_identified": True}, headers=trial_admin).status_code == 403
    )
    assert client.patch(url, json={"enabled": False}, headers=coordinator).status_code == 403
    allowed = client.patch(url, json={"allow_identified": True}, headers=admin)
    assert allowed.status_code == 200 and allowed.get_json()["allow_identified"] is True
    with runtime.db.unit_of_work() as session:
        events = session.query(AuditEvent).filter_by(action="destination.allow_identified").all()
        assert [(e.actor, e.details["allow_identified"]) for e in events] == [
            ("root@example.org", True)
        ]


def test_test_and_pin_answer_json_and_a_wrong_fingerprint_is_refused(
    client: FlaskClient, make_trial: Callable[..., Trial], token_for: Callable[..., dict]
) -> None:
    trial = make_trial("API-D4")
    admin = token_for("admin@example.org", admin=True)
    base = f"/api/v1/trials/{trial.id}/destinations"
    # Nothing listens on port 9 of the loopback: a quick, recorded failure.
    dest = client.post(
        base,
        json={"name": "s", "kind": "sftp", "host": "127.0.0.1", "port": 9, "username": "u"},
        headers=admin,
    ).get_json()
    tested = client.post(f"{base}/{dest['id']}/test", headers=admin)
    body = tested.get_json()
    assert tested.status_code == 200 and body["outcome"] == "failed" and not body["ok"]
    assert "refused" in body["message"] and body["destination"]["last_test"]["outcome"] == "failed"
    pin = client.post(
        f"{base}/{dest['id']}/pin", json={"fingerprint": "SHA256:" + "A" * 43}, headers=admin
    )
    assert pin.status_code == 422 and pin.get_json()["error"]["field"] == "fingerprint"
