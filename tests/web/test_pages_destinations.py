"""Destinations in the web UI: add each kind, errors beside the field, secrets never shown."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from trialship.app import Runtime
from trialship.registry.delivery import Destination
from trialship.registry.models import AuditEvent, Trial, User
from trialship.services.destinations import generate_key_pair
from trialship.transfer.probe import UNPINNED, HostKey, ProbeResult

PASSWORD_TEXT = "sponsor-sftp-secret-4711"
HEADER_TEXT = "Bearer tok-very-secret-0815"
HOST_KEY = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIA", "SHA256:" + "A" * 43)


def _post(client: FlaskClient, url: str, data: dict, **kwargs: object):
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/tokens")}, **kwargs)


def _base(trial: Trial) -> str:
    return f"/trials/{trial.id}/destinations"


def test_trial_admin_adds_an_sftp_destination_and_gets_a_public_key_but_never_the_private(
    client: FlaskClient,
    make_trial: Callable[..., Trial],
    make_user: Callable[..., User],
    runtime: Runtime,
) -> None:
    trial = make_trial("DST-1")
    make_user("ta@example.org", trial=trial, role="trial_admin")
    login(client, "ta@example.org")
    assert "destinations-link" in client.get(f"/trials/{trial.id}").get_data(as_text=True)
    response = _post(
        client,
        f"{_base(trial)}/new?kind=sftp",
        {
            "name": "sponsor",
            "host": "sftp.example.org",
            "username": "acme",
            "auth": "key",
            "enabled": "on",
            "remote_path": "in/{protocol_id}/{subject_id}/",
            "marker": "COMPLETE",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    with runtime.db.unit_of_work() as session:
        dest = session.query(Destination).one()
        private = runtime.vault.decrypt(dest.private_key_encrypted or b"")
        assert dest.port == 22 and dest.public_key.startswith("ssh-ed25519 ")
    assert dest.public_key in page and "Test connection" in page
    assert "BEGIN OPENSSH PRIVATE KEY" not in page and private.splitlines()[1] not in page
    assert client.get(f"{_base(trial)}/{dest.id}/edit").status_code == 200


def test_an_uploaded_key_and_a_password_are_set_but_never_shown_even_after_an_error(
    admin_client: FlaskClient, make_trial: Callable[..., Trial], runtime: Runtime
) -> None:
    trial = make_trial("DST-2")
    private, public = generate_key_pair("uploaded")
    bad = _post(
        admin_client,
        f"{_base(trial)}/new?kind=sftp",
        {
            "name": "s",
            "host": "h.example.org",
            "username": "u",
            "auth": "key",
            "password": PASSWORD_TEXT,
            "remote_path": "{patient_name}/",
            "private_key_file": (io.BytesIO(private.encode()), "id_ed25519"),
        },
        content_type="multipart/form-data",
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="remote_path-error"' in text
    assert PASSWORD_TEXT not in text and private.splitlines()[1] not in text
    good = _post(
        admin_client,
        f"{_base(trial)}/new?kind=sftp",
        {
            "name": "s",
            "host": "h.example.org",
            "username": "u",
            "auth": "key",
            "password": PASSWORD_TEXT,
            "private_key_file": (io.BytesIO(private.encode()), "id_ed25519"),
        },
        content_type="multipart/form-data",
    )
    assert good.status_code == 302
    page = admin_client.get(good.headers["Location"]).get_data(as_text=True)
    assert public.split()[1] in page and PASSWORD_TEXT not in page
    assert 'id="password-state">set' in page and 'id="private-key-state">set' in page
    with runtime.db.unit_of_work() as session:
        dest = session.query(Destination).one()
        assert runtime.vault.decrypt(dest.password_encrypted or b"") == PASSWORD_TEXT
        edit = admin_client.get(f"{_base(trial)}/{dest.id}/edit").get_data(as_text=True)
        assert PASSWORD_TEXT not in edit and private.splitlines()[1] not in edit
        details = str([e.details for e in session.query(AuditEvent).all()])
        assert PASSWORD_TEXT not in details and private.splitlines()[1] not in details


def test_dicom_and_dicomweb_destinations_and_a_field_error(
    admin_client: FlaskClient, make_trial: Callable[..., Trial], runtime: Runtime
) -> None:
    trial = make_trial("DST-3")
    missing = _post(admin_client, f"{_base(trial)}/new?kind=dicom", {"name": "pacs", "host": "h"})
    assert missing.status_code == 422
    assert 'id="called_aet-error"' in missing.get_data(as_text=True)
    ok = _post(
        admin_client,
        f"{_base(trial)}/new?kind=dicom",
        {
            "name": "pacs",
            "host": "pacs.example.org",
            "called_aet": "SPONSOR",
            "tls": "on",
            "commitment": "on",
            "max_pdu": "65536",
            "enabled": "on",
        },
    )
    assert ok.status_code == 302
    web = _post(
        admin_client,
        f"{_base(trial)}/new?kind=dicomweb",
        {
            "name": "web",
            "base_url": "https://dw.example.org/dicom-web/",
            "auth_header": HEADER_TEXT,
        },
    )
    assert web.status_code == 302
    listing = admin_client.get(f"{_base(trial)}/").get_data(as_text=True)
    assert (
        "SPONSOR@pacs.example.org:104" in listing and "https://dw.example.org/dicom-web" in listing
    )
    shown = admin_client.get(web.headers["Location"]).get_data(as_text=True)
    assert HEADER_TEXT not in shown and 'id="auth-header-state">set' in shown
    with runtime.db.unit_of_work() as session:
        pacs = session.query(Destination).filter_by(name="pacs").one()
        assert (pacs.port, pacs.calling_aet, pacs.tls, pacs.commitment) == (
            104,
            "TRIALSHIP",
            True,
            True,
        )


def test_allow_identified_is_for_admins_only_and_audited(
    client: FlaskClient,
    make_trial: Callable[..., Trial],
    make_user: Callable[..., User],
    runtime: Runtime,
) -> None:
    trial = make_trial("DST-4")
    make_user("ta@example.org", trial=trial, role="trial_admin")
    make_user("root@example.org", admin=True)
    login(client, "ta@example.org")
    form = {"name": "web", "base_url": "http://dw.example.org/dicom-web", "enabled": "on"}
    assert "allow_identified" not in client.get(f"{_base(trial)}/new?kind=dicomweb").get_data(
        as_text=True
    )
    created = _post(client, f"{_base(trial)}/new?kind=dicomweb", {**form, "allow_identified": "on"})
    assert created.status_code == 302  # the box is not offered, so not taken
    with runtime.db.unit_of_work() as session:
        dest = session.query(Destination).one()
        assert dest.allow_identified is False
    client.post("/logout", data={"csrf_token": csrf_token(client, "/tokens")})
    login(client, "root@example.org")
    edited = _post(client, f"{_base(trial)}/{dest.id}/edit", {**form, "allow_identified": "on"})
    assert edited.status_code == 302
    with runtime.db.unit_of_work() as session:
        assert session.get(Destination, dest.id).allow_identified is True  # type: ignore[union-attr]
        event = session.query(AuditEvent).filter_by(action="destination.allow_identified").one()
        assert event.details["allow_identified"] is True and event.actor == "root@example.org"


def test_a_coordinator_sees_destinations_but_may_not_add_one(
    client: FlaskClient, make_trial: Callable[..., Trial], make_user: Callable[..., User]
) -> None:
    trial = make_trial("DST-5")
    make_user("co@example.org", trial=trial, role="coordinator")
    login(client, "co@example.org")
    assert client.get(f"{_base(trial)}/").status_code == 200
    assert client.get(f"{_base(trial)}/new?kind=sftp").status_code == 403
    refused = _post(
        client, f"{_base(trial)}/new?kind=dicomweb", {"name": "x", "base_url": "http://a"}
    )
    assert refused.status_code == 403


def test_first_contact_shows_the_fingerprint_and_the_confirm_button_pins_it(
    admin_client: FlaskClient,
    make_trial: Callable[..., Trial],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trialship.services import destinations

    def fake_probe(dest: Destination, vault: object) -> ProbeResult:
        return ProbeResult(UNPINNED, "offered", HOST_KEY)

    monkeypatch.setattr(destinations, "run_probe", fake_probe)
    trial = make_trial("DST-6")
    created = _post(
        admin_client,
        f"{_base(trial)}/new?kind=sftp",
        {"name": "s", "host": "h.example.org", "username": "u"},
    )
    show = created.headers["Location"]
    tested = _post(admin_client, f"{show}/test", {})
    page = admin_client.get(tested.headers["Location"]).get_data(as_text=True)
    assert HOST_KEY.fingerprint in page and 'id="pin-host-key"' in page
    wrong = _post(admin_client, f"{show}/pin", {"fingerprint": "SHA256:" + "B" * 43})
    assert "does not match" in admin_client.get(wrong.headers["Location"]).get_data(as_text=True)
    _post(admin_client, f"{show}/pin", {"fingerprint": HOST_KEY.fingerprint})
    page = admin_client.get(show).get_data(as_text=True)
    assert f"Pinned: <code>ssh-ed25519 {HOST_KEY.fingerprint}" in page
    with runtime.db.unit_of_work() as session:
        actions = [e.action for e in session.query(AuditEvent).all()]
        test_event = session.query(AuditEvent).filter_by(action="destination.test").one()
    assert "destination.pin" in actions and test_event.details == {
        "name": "s",
        "outcome": "unpinned",
    }
