"""Shared fixtures: a migrated SQLite database per test, the app, users and a logged-in client."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trialship import crypto
from trialship.app import Runtime, bootstrap
from trialship.registry import migrate
from trialship.registry.models import Role, Trial, User
from trialship.services import memberships, trials, users
from trialship.services.authz import Actor

PASSWORD = "correct horse battery"
SYSTEM = Actor.command_line("tests")


@pytest.fixture(autouse=True)
def _cheap_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stored hash records its own cost, so a cheaper cost only speeds the tests up.
    monkeypatch.setattr(crypto, "_SCRYPT_N", 2**10)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head; each test gets a copy (faster than migrating each time)."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "trialship.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def runtime(tmp_path: Path, migrated_template: Path) -> Iterator[Runtime]:
    data = tmp_path / "instance"
    data.mkdir()
    shutil.copy(migrated_template, data / "trialship.db")
    rt = bootstrap({"data_dir": data})
    yield rt
    rt.db.dispose()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    from trialship.web import create_app

    return create_app(runtime=runtime, flask_config={"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(runtime: Runtime) -> Callable[..., User]:
    def make(
        email: str,
        *,
        admin: bool = False,
        trial: Trial | None = None,
        role: Role | str | None = None,
        active: bool = True,
    ) -> User:
        with runtime.db.unit_of_work() as session:
            user = users.create_user(
                session,
                SYSTEM,
                email=email,
                password=PASSWORD,
                name=email.split("@")[0],
                is_admin=admin,
            )
            if trial is not None and role is not None:
                memberships.set_membership(
                    session, SYSTEM, session.merge(trial), user, role, runtime.today()
                )
            if not active:
                user.active = False
            return user

    return make


@pytest.fixture
def make_trial(runtime: Runtime) -> Callable[..., Trial]:
    def make(protocol_id: str = "ACM-301", **fields: Any) -> Trial:
        data = {
            "protocol_id": protocol_id,
            "sponsor_name": "Acme Oncology",
            "short_name": f"Trial {protocol_id}",
            **fields,
        }
        with runtime.db.unit_of_work() as session:
            return trials.create_trial(session, SYSTEM, data)

    return make


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


@pytest.fixture
def admin_client(client: FlaskClient, make_user: Callable[..., User]) -> FlaskClient:
    make_user("admin@example.org", admin=True)
    login(client, "admin@example.org")
    return client
