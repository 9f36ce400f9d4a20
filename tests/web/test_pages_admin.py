"""Users (admins only) and API tokens (everyone their own)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import PASSWORD, csrf_token, login
from trialship.registry.models import ApiToken, User


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **(data or {})})


def user(runtime, email: str) -> User:
    with runtime.db.unit_of_work() as session:
        return session.query(User).filter_by(email=email).one()


def test_admin_creates_disables_and_promotes_users(admin_client, runtime) -> None:
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert 'id="user-form"' in page and "admin@example.org" in page
    response = post(
        admin_client,
        "/admin/users",
        {"email": "Nurse@Example.org", "name": "Nurse", "password": PASSWORD},
    )
    assert response.status_code == 302
    nurse = user(runtime, "nurse@example.org")
    assert nurse.active and not nurse.is_admin

    assert post(admin_client, f"/admin/users/{nurse.id}", {"action": "disable"}).status_code == 302
    assert not user(runtime, "nurse@example.org").active
    assert post(admin_client, f"/admin/users/{nurse.id}", {"action": "enable"}).status_code == 302
    response = post(admin_client, f"/admin/users/{nurse.id}", {"action": "make_admin"})
    assert response.status_code == 302
    assert user(runtime, "nurse@example.org").is_admin
    response = post(admin_client, f"/admin/users/{nurse.id}", {"password": "a new long secret"})
    assert response.status_code == 302


def test_user_form_errors_name_the_field_and_never_echo_the_password(admin_client, runtime):
    response = post(
        admin_client, "/admin/users", {"email": "x@example.org", "password": "short-pw"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "password: must be at least 10 characters" in page and "short-pw" not in page
    assert 'value="x@example.org"' in page
    response = post(admin_client, "/admin/users", {"email": "not-mail", "password": PASSWORD})
    assert response.status_code == 422 and "email: must be an e-mail address" in response.text
    response = post(
        admin_client, "/admin/users", {"email": "admin@example.org", "password": PASSWORD}
    )
    assert response.status_code == 409


def test_admin_cannot_disable_themselves(admin_client, runtime) -> None:
    me = user(runtime, "admin@example.org")
    response = post(admin_client, f"/admin/users/{me.id}", {"action": "disable"})
    assert response.status_code == 422
    assert "active: you cannot disable your own account" in response.get_data(as_text=True)
    assert user(runtime, "admin@example.org").active


def test_non_admins_cannot_manage_users(client, make_user) -> None:
    other = make_user("o@example.org")
    make_user("c@example.org")
    login(client, "c@example.org")
    assert client.get("/admin/users").status_code == 403
    assert 'id="nav-users"' not in client.get("/").get_data(as_text=True)
    assert post(client, f"/admin/users/{other.id}", {"action": "make_admin"}).status_code == 403


def test_tokens_are_shown_once_and_revoked(client, make_user, runtime) -> None:
    make_user("c@example.org")
    login(client, "c@example.org")
    response = post(client, "/tokens", {"name": "nightly upload"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    plain = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    listing = client.get("/tokens").get_data(as_text=True)
    assert "nightly upload" in listing and plain not in listing and plain[:10] in listing

    with runtime.db.unit_of_work() as session:
        token_id = session.query(ApiToken.id).scalar()
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 302
    listing = client.get("/tokens").get_data(as_text=True)
    assert f'id="revoke-{token_id}"' not in listing
    with runtime.db.unit_of_work() as session:
        assert session.get(ApiToken, token_id).revoked_at is not None


def test_token_name_is_required_and_others_tokens_are_private(client, make_user, runtime):
    make_user("a@example.org")
    make_user("b@example.org")
    login(client, "a@example.org")
    response = post(client, "/tokens", {"name": " "})
    assert response.status_code == 422 and "name: must be 1 to 100 characters" in response.text
    post(client, "/tokens", {"name": "a-token"})
    with runtime.db.unit_of_work() as session:
        token_id = session.query(ApiToken.id).scalar()
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "b@example.org")
    assert "a-token" not in client.get("/tokens").get_data(as_text=True)
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 403


def test_admin_sees_and_revokes_everyones_tokens(client, make_user, runtime) -> None:
    make_user("a@example.org")
    make_user("root@example.org", admin=True)
    login(client, "a@example.org")
    post(client, "/tokens", {"name": "a-token"})
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "root@example.org")
    page = client.get("/tokens").get_data(as_text=True)
    assert "a-token" in page and "a@example.org" in page
    with runtime.db.unit_of_work() as session:
        token_id = session.query(ApiToken.id).scalar()
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 302
