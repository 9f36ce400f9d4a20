"""The JSON API under /api/v1: bearer tokens, status codes, and the registry use cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import SYSTEM
from trialship.app import Runtime
from trialship.registry.models import ApiToken, Role, Trial, User
from trialship.services import users

Headers = dict[str, str]
MRN = "MRN-SECRET-4711"
ISSUER = "ST-ELSEWHERE-HOSP"


@pytest.fixture
def token_for(runtime: Runtime) -> Callable[[User], Headers]:
    def make(user: User) -> Headers:
        with runtime.db.unit_of_work() as session:
            _, plain = users.create_token(session, SYSTEM, user, "script")
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.fixture
def trial(make_trial: Callable[..., Trial]) -> Trial:
    return make_trial("ACM-301")


@pytest.fixture
def admin(make_user: Callable[..., User], token_for: Callable[[User], Headers]) -> Headers:
    return token_for(make_user("admin@example.org", admin=True))


@pytest.fixture
def coordinator(
    make_user: Callable[..., User], token_for: Callable[[User], Headers], trial: Trial
) -> Headers:
    return token_for(make_user("coord@example.org", trial=trial, role=Role.COORDINATOR))


@pytest.fixture
def viewer(
    make_user: Callable[..., User], token_for: Callable[[User], Headers], trial: Trial
) -> Headers:
    return token_for(make_user("viewer@example.org", trial=trial, role=Role.VIEWER))


def error_of(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    if code:
        assert error["code"] == code
    if field:
        assert error.get("field") == field
    return error


# -- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/api/v1/trials", "/api/v1/openapi.json", "/api/v1/no-such-thing"]
)
def test_a_request_without_a_token_gets_401_with_a_bearer_challenge(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer  ", "Bearer a b", "x"])
def test_a_malformed_authorization_header_gets_401(client: FlaskClient, header: str) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": header})
    error_of(response, 401, "unauthorized")
    assert "WWW-Authenticate" in response.headers


def test_an_unknown_token_gets_401_invalid_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer ts_not-a-real-token"})
    error_of(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_gets_401(
    client: FlaskClient, runtime: Runtime, make_user: Callable[..., User]
) -> None:
    user = make_user("script@example.org")
    with runtime.db.unit_of_work() as session:
        token, plain = users.create_token(session, SYSTEM, user, "nightly")
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with runtime.db.unit_of_work() as session:
        users.revoke_token(session, SYSTEM, token.id)
    error_of(client.get("/api/v1/me", headers=headers), 401, "unauthorized")


def test_a_disabled_users_token_gets_401(
    client: FlaskClient, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    headers = token_for(make_user("gone@example.org", active=False))
    error_of(client.get("/api/v1/me", headers=headers), 401, "unauthorized")


def test_a_used_token_records_when_it_was_last_used(
    client: FlaskClient, runtime: Runtime, admin: Headers
) -> None:
    assert client.get("/api/v1/me", headers=admin).status_code == 200
    with runtime.db.unit_of_work() as session:
        assert session.query(ApiToken).one().last_used_at is not None


def test_me_shows_the_tokens_user_and_memberships(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    response = client.get("/api/v1/me", headers=coordinator)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {
        "id": response.get_json()["id"],
        "email": "coord@example.org",
        "name": "coord",
        "is_admin": False,
        "memberships": [{"trial_id": trial.id, "protocol_id": "ACM-301", "role": "coordinator"}],
    }


def test_a_session_cookie_is_not_enough_for_the_api(admin_client: FlaskClient) -> None:
    error_of(admin_client.get("/api/v1/trials"), 401, "unauthorized")


def test_unknown_api_urls_and_methods_are_json_404_and_405(
    client: FlaskClient, admin: Headers, trial: Trial
) -> None:
    error_of(client.get("/api/v1/nothing/here", headers=admin), 404, "not_found")
    error_of(client.get("/api/v1/trials/", headers=admin), 404, "not_found")
    response = client.delete(f"/api/v1/trials/{trial.id}", headers=admin)
    error_of(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH"}


# -- trials ---------------------------------------------------------------------------------


def test_admin_creates_a_trial_and_gets_201_with_the_trial(
    client: FlaskClient, admin: Headers
) -> None:
    response = client.post(
        "/api/v1/trials",
        json={
            "protocol_id": "NEW-1",
            "sponsor_name": "Sponsor",
            "short_name": "New",
            "irb_expiry": "2031-05-01",
        },
        headers=admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["protocol_id"] == "NEW-1"
    assert body["irb_expiry"] == "2031-05-01"
    assert body["status"] == "active"
    assert body["read_only_reason"] is None
    assert response.headers["Location"].endswith(f"/api/v1/trials/{body['id']}")
    listed = client.get("/api/v1/trials", headers=admin).get_json()["items"]
    assert [t["protocol_id"] for t in listed] == ["NEW-1"]
    assert client.get(f"/api/v1/trials/{body['id']}", headers=admin).get_json() == body


def test_a_coordinator_cannot_create_a_trial(client: FlaskClient, coordinator: Headers) -> None:
    response = client.post(
        "/api/v1/trials",
        json={"protocol_id": "X", "sponsor_name": "S", "short_name": "X"},
        headers=coordinator,
    )
    error_of(response, 403, "forbidden")


def test_a_duplicate_protocol_id_is_409(client: FlaskClient, admin: Headers, trial: Trial) -> None:
    response = client.post(
        "/api/v1/trials",
        json={"protocol_id": "ACM-301", "sponsor_name": "S", "short_name": "X"},
        headers=admin,
    )
    error_of(response, 409, "conflict", "protocol_id")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[" * 100_000, "application/json"),
        (b"protocol_id=X", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, admin: Headers, body: bytes, content_type: str
) -> None:
    response = client.post(
        "/api/v1/trials", data=body, headers={**admin, "Content-Type": content_type}
    )
    error_of(response, 400, "bad_request")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"protocol_id": "X", "sponsor_name": "S", "short_name": "X", "colour": "red"}, "colour"),
        ({"protocol_id": "X", "sponsor_name": "S"}, "short_name"),
        ({"protocol_id": 7, "sponsor_name": "S", "short_name": "X"}, "protocol_id"),
        ({"protocol_id": "X", "sponsor_name": "S", "short_name": "X", "status": "x"}, "status"),
        (
            {"protocol_id": "X", "sponsor_name": "S", "short_name": "X", "irb_expiry": "soon"},
            "irb_expiry",
        ),
        (
            {"protocol_id": "X", "sponsor_name": "S", "short_name": "X", "missing_after_days": 1e9},
            "missing_after_days",
        ),
        (
            {"protocol_id": "X", "sponsor_name": "S", "short_name": "X", "deid_profile": "[x"},
            "deid_profile",
        ),
    ],
)
def test_an_invalid_trial_field_is_422_naming_it(
    client: FlaskClient, admin: Headers, body: dict, field: str
) -> None:
    error_of(client.post("/api/v1/trials", json=body, headers=admin), 422, "invalid", field)


@pytest.mark.parametrize("value", [None, 5, ["[deid]"]])
def test_a_deid_profile_that_is_not_text_is_refused_and_changes_nothing(
    client: FlaskClient, admin: Headers, trial: Trial, value: object
) -> None:
    url = f"/api/v1/trials/{trial.id}"
    before = client.get(url, headers=admin).get_json()["deid_profile"]
    response = client.patch(url, json={"deid_profile": value}, headers=admin)
    found = error_of(response, 422, field="deid_profile")
    assert "must be text" in found["message"]
    assert client.get(url, headers=admin).get_json()["deid_profile"] == before


def test_a_coordinator_edits_the_trial_but_not_its_status(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    url = f"/api/v1/trials/{trial.id}"
    response = client.patch(url, json={"short_name": "Renamed"}, headers=coordinator)
    assert response.status_code == 200
    assert response.get_json()["short_name"] == "Renamed"
    error_of(client.patch(url, json={"status": "closed"}, headers=coordinator), 403, "forbidden")


def test_trials_are_404_when_unknown_and_403_when_not_a_member(
    client: FlaskClient,
    make_trial: Callable[..., Trial],
    coordinator: Headers,
    trial: Trial,
) -> None:
    other = make_trial("OTHER-9")
    error_of(client.get("/api/v1/trials/999999", headers=coordinator), 404, "not_found")
    error_of(client.get("/api/v1/trials/99999999999999999999", headers=coordinator), 404)
    error_of(client.get(f"/api/v1/trials/{other.id}", headers=coordinator), 403, "forbidden")
    listed = client.get("/api/v1/trials", headers=coordinator).get_json()["items"]
    assert [t["id"] for t in listed] == [trial.id]


def test_a_huge_number_in_a_body_is_422_not_a_database_overflow(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    response = client.post(
        f"/api/v1/trials/{trial.id}/timepoints",
        json={"timepoint_id": "V1", "order": 10**30},
        headers=coordinator,
    )
    error_of(response, 422, "invalid", "order")


def test_a_read_only_trial_says_why_and_refuses_writes(
    client: FlaskClient,
    make_trial: Callable[..., Trial],
    make_user: Callable[..., User],
    token_for: Callable[[User], Headers],
) -> None:
    expired = make_trial("OLD-1", irb_expiry="2001-01-01")
    headers = token_for(make_user("c2@example.org", trial=expired, role=Role.COORDINATOR))
    body = client.get(f"/api/v1/trials/{expired.id}", headers=headers).get_json()
    assert "expired" in body["read_only_reason"]
    response = client.post(
        f"/api/v1/trials/{expired.id}/sites", json={"site_id": "S1"}, headers=headers
    )
    error_of(response, 403, "forbidden")


# -- sites ----------------------------------------------------------------------------------


def test_a_coordinator_manages_sites(
    client: FlaskClient, coordinator: Headers, trial: Trial, make_trial: Callable[..., Trial]
) -> None:
    url = f"/api/v1/trials/{trial.id}/sites"
    response = client.post(url, json={"site_id": "S01", "name": "North"}, headers=coordinator)
    assert response.status_code == 201
    site = response.get_json()
    assert site == {"id": site["id"], "trial_id": trial.id, "site_id": "S01", "name": "North"}
    error_of(client.post(url, json={"site_id": "S01"}, headers=coordinator), 409, field="site_id")
    error_of(client.post(url, json={"name": "x"}, headers=coordinator), 422, field="site_id")
    assert client.get(url, headers=coordinator).get_json()["items"] == [site]
    patched = client.patch(f"{url}/{site['id']}", json={"name": "South"}, headers=coordinator)
    assert patched.status_code == 200 and patched.get_json()["name"] == "South"
    other = make_trial("OTHER-2")
    error_of(client.get(f"/api/v1/trials/{other.id}/sites/{site['id']}", headers=coordinator), 403)
    error_of(client.get(f"{url}/424242", headers=coordinator), 404, "not_found")


def test_a_site_of_another_trial_is_404(
    client: FlaskClient, admin: Headers, trial: Trial, make_trial: Callable[..., Trial]
) -> None:
    other = make_trial("OTHER-3")
    site = client.post(
        f"/api/v1/trials/{other.id}/sites", json={"site_id": "S9"}, headers=admin
    ).get_json()
    response = client.get(f"/api/v1/trials/{trial.id}/sites/{site['id']}", headers=admin)
    error_of(response, 404, "not_found")
    response = client.patch(
        f"/api/v1/trials/{trial.id}/sites/{site['id']}", json={"name": "x"}, headers=admin
    )
    error_of(response, 404, "not_found")


# -- subjects -------------------------------------------------------------------------------


def test_a_viewer_reads_subjects_but_cannot_add_one(
    client: FlaskClient, viewer: Headers, trial: Trial
) -> None:
    url = f"/api/v1/trials/{trial.id}/subjects"
    response = client.get(url, headers=viewer)
    assert response.status_code == 200 and response.get_json() == {"items": []}
    error_of(client.post(url, json={"subject_id": "001"}, headers=viewer), 403, "forbidden")


def test_a_coordinator_adds_a_subject_and_gets_it_back_without_identifiers(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    client.post(f"/api/v1/trials/{trial.id}/sites", json={"site_id": "S01"}, headers=coordinator)
    url = f"/api/v1/trials/{trial.id}/subjects"
    response = client.post(
        url,
        json={
            "subject_id": "ACM-001",
            "site_id": "S01",
            "baseline_date": "2024-03-01",
            "consent_distribution": True,
            "identifiers": [{"mrn": MRN, "issuer": ISSUER}, {"mrn": "X2"}],
        },
        headers=coordinator,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    subject = response.get_json()
    assert subject["subject_id"] == "ACM-001"
    assert subject["site_id"] == "S01"
    assert subject["baseline_date"] == "2024-03-01"
    assert subject["status"] == "enrolled"
    assert subject["consent_distribution"] is True
    assert subject["identifier_count"] == 2
    assert "identifiers" not in subject
    assert client.get(f"{url}/{subject['id']}", headers=coordinator).get_json() == subject
    assert client.get(url, headers=coordinator).get_json()["items"] == [subject]


def test_a_duplicate_subject_is_409(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    url = f"/api/v1/trials/{trial.id}/subjects"
    assert client.post(url, json={"subject_id": "001"}, headers=coordinator).status_code == 201
    error_of(
        client.post(url, json={"subject_id": "001"}, headers=coordinator),
        409,
        "conflict",
        "subject_id",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject_id": "X" * 65}, "subject_id"),
        ({"subject_id": ""}, "subject_id"),
        ({"subject_id": "A\\B"}, "subject_id"),
        ({"subject_id": "001", "site_id": "NOPE"}, "site_id"),
        ({"subject_id": "001", "status": "dead"}, "status"),
        ({"subject_id": "001", "baseline_date": "2024-02-30"}, "baseline_date"),
        ({"subject_id": "001", "baseline_date": "9999-12-01"}, "baseline_date"),
        ({"subject_id": "001", "consent_distribution": "maybe"}, "consent_distribution"),
        ({"subject_id": "001", "identifiers": "not-a-list-of-objects"}, None),
        ({"subject_id": "001", "identifiers": {"mrn": "x"}}, "identifiers"),
        ({"subject_id": "001", "identifiers": [{"mrn": ""}]}, "identifiers.mrn"),
        ({"subject_id": "001", "identifiers": [{"mrn": "A"}, {"mrn": "a"}]}, "identifiers"),
    ],
)
def test_an_invalid_subject_field_is_422_naming_it(
    client: FlaskClient, coordinator: Headers, trial: Trial, body: dict, field: str | None
) -> None:
    response = client.post(f"/api/v1/trials/{trial.id}/subjects", json=body, headers=coordinator)
    if field is None:  # "MRN|ISSUER" text is accepted, like in the CSV import
        assert response.status_code == 201
        return
    error_of(response, 422, "invalid", field)


def test_a_subject_is_edited_and_unknown_or_foreign_subjects_are_404(
    client: FlaskClient, admin: Headers, trial: Trial, make_trial: Callable[..., Trial]
) -> None:
    url = f"/api/v1/trials/{trial.id}/subjects"
    subject = client.post(url, json={"subject_id": "001"}, headers=admin).get_json()
    response = client.patch(
        f"{url}/{subject['id']}",
        json={"status": "withdrawn", "baseline_date": "2024-01-15"},
        headers=admin,
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    assert response.get_json()["baseline_date"] == "2024-01-15"
    other = make_trial("OTHER-4")
    foreign = f"/api/v1/trials/{other.id}/subjects/{subject['id']}"
    error_of(client.get(foreign, headers=admin), 404, "not_found")
    error_of(client.patch(foreign, json={}, headers=admin), 404, "not_found")
    error_of(client.get(f"{url}/31337", headers=admin), 404, "not_found")
    error_of(
        client.patch(f"{url}/{subject['id']}", json={"subject_id": "X" * 65}, headers=admin),
        422,
        "invalid",
        "subject_id",
    )


# -- CSV import -----------------------------------------------------------------------------

CSV = (
    "subject_id,site_id,baseline_date,identifiers\n"
    f"ACM-001,,2024-03-01,{MRN}|{ISSUER}\n"
    "ACM-002,,,\n"
).encode()


def _import(client: FlaskClient, headers: Headers, trial: Trial, data: bytes, query: str = ""):
    return client.post(
        f"/api/v1/trials/{trial.id}/subjects/import{query}",
        data=data,
        headers={**headers, "Content-Type": "text/csv"},
    )


def test_a_csv_dry_run_shows_rows_and_saves_nothing(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    response = _import(client, coordinator, trial, CSV)
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and body["committed"] is False
    assert body["row_count"] == 2 and body["error_count"] == 0
    assert body["rows"][0] == {
        "line": 2,
        "values": {
            "subject_id": "ACM-001",
            "site_id": "",
            "baseline_date": "2024-03-01",
            "identifier_count": 1,
        },
        "errors": [],
    }
    assert MRN not in response.get_data(as_text=True)
    subjects = client.get(f"/api/v1/trials/{trial.id}/subjects", headers=coordinator)
    assert subjects.get_json()["items"] == []


def test_a_csv_commit_saves_every_row(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    response = _import(client, coordinator, trial, CSV, "?commit=true")
    assert response.status_code == 201
    assert response.get_json()["committed"] is True
    items = client.get(f"/api/v1/trials/{trial.id}/subjects", headers=coordinator).get_json()
    assert [(s["subject_id"], s["identifier_count"]) for s in items["items"]] == [
        ("ACM-001", 1),
        ("ACM-002", 0),
    ]


def test_a_csv_commit_with_a_bad_row_is_422_and_saves_nothing(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    data = CSV + b"ACM-001,,,\n" + ("X" * 65 + ",,,\n").encode()
    response = _import(client, coordinator, trial, data, "?commit=true")
    body = response.get_json()
    error_of(response, 422, "invalid", "file")
    assert body["committed"] is False and body["error_count"] == 2
    assert "exists already" in body["rows"][2]["errors"][0]
    assert "subject_id" in body["rows"][3]["errors"][0]
    items = client.get(f"/api/v1/trials/{trial.id}/subjects", headers=coordinator).get_json()
    assert items["items"] == []
    dry = _import(client, coordinator, trial, data)
    assert dry.status_code == 200 and dry.get_json()["ok"] is False


@pytest.mark.parametrize(
    ("data", "query", "field"),
    [
        (b"name,colour\nx,y\n", "", "file"),
        (b"", "", "file"),
        (b"subject_id\n", "", "file"),
        (b"subject_id\n\xff\xfe\n", "", "file"),
        (CSV, "?commit=perhaps", "commit"),
    ],
)
def test_an_unreadable_csv_is_422_naming_the_file(
    client: FlaskClient, coordinator: Headers, trial: Trial, data: bytes, query: str, field: str
) -> None:
    error_of(_import(client, coordinator, trial, data, query), 422, "invalid", field)


def test_a_csv_import_needs_a_csv_body_and_the_registry_role(
    client: FlaskClient, viewer: Headers, coordinator: Headers, trial: Trial
) -> None:
    url = f"/api/v1/trials/{trial.id}/subjects/import"
    error_of(client.post(url, json={"subject_id": "x"}, headers=coordinator), 415)
    error_of(_import(client, viewer, trial, CSV, "?commit=true"), 403, "forbidden")


# -- time points ----------------------------------------------------------------------------


def test_a_coordinator_manages_time_points(
    client: FlaskClient, coordinator: Headers, trial: Trial, make_trial: Callable[..., Trial]
) -> None:
    url = f"/api/v1/trials/{trial.id}/timepoints"
    response = client.post(
        url,
        json={
            "timepoint_id": "BL",
            "day_offset": 0,
            "window_minus": 7,
            "window_plus": 3,
            "expected_exams": [{"modality": "ct", "description_pattern": "CHEST*", "count": 2}],
        },
        headers=coordinator,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    tp = response.get_json()
    assert tp["order"] == 1
    assert tp["expected_exams"] == [{"modality": "CT", "description_pattern": "CHEST*", "count": 2}]
    error_of(
        client.post(url, json={"timepoint_id": "BL"}, headers=coordinator),
        409,
        "conflict",
        "timepoint_id",
    )
    patched = client.patch(
        f"{url}/{tp['id']}",
        json={"description": "Baseline", "expected_exams": []},
        headers=coordinator,
    )
    assert patched.status_code == 200
    assert patched.get_json()["description"] == "Baseline"
    assert patched.get_json()["expected_exams"] == []
    assert client.get(url, headers=coordinator).get_json()["items"] == [patched.get_json()]
    other = make_trial("OTHER-5")
    error_of(client.get(f"/api/v1/trials/{other.id}/timepoints", headers=coordinator), 403)
    error_of(client.get(f"{url}/777", headers=coordinator), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timepoint_id": "V1", "window_minus": -5, "window_plus": 2}, "window_plus"),
        ({"timepoint_id": "V1", "day_offset": "soon"}, "day_offset"),
        ({"timepoint_id": "V1", "order": True}, "order"),
        (
            {"timepoint_id": "V1", "expected_exams": [{"modality": "C/T"}]},
            "expected_exams.modality",
        ),
        ({"timepoint_id": "V1", "expected_exams": [{"modality": "CT", "count": 0}]}, None),
        ({"timepoint_id": "V1", "expected_exams": ["CT"]}, "expected_exams"),
        ({"timepoint_id": "V1", "expected_exams": 5}, "expected_exams"),
    ],
)
def test_an_invalid_time_point_is_422_naming_the_field(
    client: FlaskClient, coordinator: Headers, trial: Trial, body: dict, field: str | None
) -> None:
    response = client.post(f"/api/v1/trials/{trial.id}/timepoints", json=body, headers=coordinator)
    error_of(response, 422, "invalid", field or "expected_exams.count")


def test_a_window_that_ends_before_it_starts_is_refused_on_edit(
    client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    url = f"/api/v1/trials/{trial.id}/timepoints"
    tp = client.post(
        url, json={"timepoint_id": "V1", "window_minus": 2, "window_plus": 2}, headers=coordinator
    ).get_json()
    response = client.patch(f"{url}/{tp['id']}", json={"window_minus": -3}, headers=coordinator)
    error_of(response, 422, "invalid", "window_plus")


# -- completeness ---------------------------------------------------------------------------


def test_completeness_shows_states_and_windows_for_a_subject_with_a_baseline(
    client: FlaskClient, runtime: Runtime, coordinator: Headers, trial: Trial
) -> None:
    today = runtime.today()
    base = f"/api/v1/trials/{trial.id}"
    for tp in [
        {"timepoint_id": "BL", "day_offset": 0, "window_minus": 3, "window_plus": 3},
        {"timepoint_id": "W2", "day_offset": 10, "window_minus": 5, "window_plus": 5},
        {"timepoint_id": "M6", "day_offset": 180, "window_minus": 14, "window_plus": 14},
    ]:
        assert client.post(f"{base}/timepoints", json=tp, headers=coordinator).status_code == 201
    baseline = today - dt.timedelta(days=10)
    for subject in [
        {"subject_id": "001", "baseline_date": baseline.isoformat()},
        {"subject_id": "002"},
    ]:
        response = client.post(f"{base}/subjects", json=subject, headers=coordinator)
        assert response.status_code == 201

    response = client.get(f"{base}/completeness", headers=coordinator)
    assert response.status_code == 200
    body = response.get_json()
    assert body["date"] == today.isoformat()
    assert [tp["timepoint_id"] for tp in body["timepoints"]] == ["BL", "W2", "M6"]
    first, second = body["subjects"]
    assert first["subject_id"] == "001" and first["baseline_date"] == baseline.isoformat()

    def day(offset: int) -> str:
        return (baseline + dt.timedelta(days=offset)).isoformat()

    assert [(c["timepoint_id"], c["state"], c["window"]) for c in first["cells"]] == [
        ("BL", "late", {"start": day(-3), "target": day(0), "end": day(3)}),
        ("W2", "due", {"start": day(5), "target": day(10), "end": day(15)}),
        ("M6", "not_due", {"start": day(166), "target": day(180), "end": day(194)}),
    ]
    assert first["cells"][0]["received"] == 0 and first["cells"][0]["expected"] == 1
    assert [(c["state"], c["window"]) for c in second["cells"]] == [("not_due", None)] * 3
    assert body["totals"] == {"not_due": 4, "due": 1, "received": 0, "late": 1, "missing": 0}


def test_completeness_of_a_trial_without_subjects_is_empty(
    client: FlaskClient, viewer: Headers, trial: Trial
) -> None:
    body = client.get(f"/api/v1/trials/{trial.id}/completeness", headers=viewer).get_json()
    assert body["subjects"] == [] and body["timepoints"] == []
    assert set(body["totals"].values()) == {0}


# -- identifiers ----------------------------------------------------------------------------


def test_original_identifiers_never_appear_in_any_response(
    app: Flask, client: FlaskClient, coordinator: Headers, trial: Trial
) -> None:
    bodies: list[str] = []

    @app.after_request
    def _record(response):  # type: ignore[no-untyped-def]
        bodies.append(response.get_data(as_text=True))
        return response

    base = f"/api/v1/trials/{trial.id}"
    identifiers = [{"mrn": MRN, "issuer": ISSUER}]
    subject = client.post(
        f"{base}/subjects",
        json={"subject_id": "001", "baseline_date": "2024-01-01", "identifiers": identifiers},
        headers=coordinator,
    ).get_json()
    client.post(f"{base}/subjects", json={"subject_id": "002", "identifiers": identifiers},
                headers=coordinator)  # fmt: skip
    client.get(f"{base}/subjects", headers=coordinator)
    client.get(f"{base}/subjects/{subject['id']}", headers=coordinator)
    client.patch(
        f"{base}/subjects/{subject['id']}",
        json={"identifiers": [*identifiers, {"mrn": MRN + "-B", "issuer": ISSUER}]},
        headers=coordinator,
    )
    client.post(f"{base}/timepoints", json={"timepoint_id": "BL"}, headers=coordinator)
    client.get(f"{base}/completeness", headers=coordinator)
    _import(client, coordinator, trial, CSV)
    _import(client, coordinator, trial, CSV, "?commit=true")
    client.get("/api/v1/me", headers=coordinator)
    client.get("/api/v1/trials", headers=coordinator)

    assert len(bodies) == 11
    assert any("identifier_count" in body for body in bodies)
    assert any('"code": "conflict"' in body or '"code":"conflict"' in body for body in bodies)
    for body in bodies:
        assert MRN not in body
        assert ISSUER not in body
