from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import csrf_token, login


def test_healthz_needs_no_login(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_pages_redirect_to_login_without_a_session(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admin_logs_in_and_sees_trials(client: FlaskClient, make_user) -> None:
    make_user("a@example.org", admin=True)
    login(client, "a@example.org")
    page = client.get("/").get_data(as_text=True)
    assert "Trials" in page and "New trial" in page


def test_wrong_password_is_refused_and_rate_limited(client: FlaskClient, make_user) -> None:
    make_user("b@example.org")
    for _ in range(5):
        response = client.post(
            "/login",
            data={"email": "b@example.org", "password": "nope", "csrf_token": csrf_token(client)},
        )
        assert response.status_code == 401
        assert "wrong e-mail or password" in response.get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "email": "b@example.org",
            "password": "correct horse battery",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 401
    assert "too many failed logins" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client: FlaskClient, make_user) -> None:
    make_user("c@example.org")
    response = client.post("/login", data={"email": "c@example.org", "password": "x"})
    assert response.status_code == 400
