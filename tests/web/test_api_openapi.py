"""The OpenAPI document of /api/v1: valid, complete, and true to the responses."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.conftest import SYSTEM
from trialship.app import Runtime
from trialship.registry.models import Trial, User
from trialship.services import users
from trialship.services.destinations import DESTINATION_FIELDS
from trialship.services.exams import CONFIRMATION_FIELDS
from trialship.services.subjects import SUBJECT_FIELDS
from trialship.services.timepoints import TIMEPOINT_FIELDS
from trialship.services.trials import SITE_FIELDS, TRIAL_FIELDS

IGNORED_METHODS = {"HEAD", "OPTIONS"}
CATCH_ALL = "api.unmatched"  # answers JSON 404/405 for URLs that are not in the API


@pytest.fixture
def admin(runtime: Runtime, make_user: Callable[..., User]) -> dict[str, str]:
    user = make_user("admin@example.org", admin=True)
    with runtime.db.unit_of_work() as session:
        _, plain = users.create_token(session, SYSTEM, user, "docs")
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def spec(client: FlaskClient, admin: dict[str, str]) -> dict:
    response = client.get("/api/v1/openapi.json", headers=admin)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def conforms(spec: dict, schema_name: str, instance: object) -> None:
    schema = {"components": spec["components"], "$ref": f"#/components/schemas/{schema_name}"}
    OAS31Validator(schema).validate(instance)


def test_the_openapi_document_is_valid(spec: dict) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]


def test_every_api_route_is_in_the_document_and_nothing_else(app: Flask, spec: dict) -> None:
    prefix = spec["servers"][0]["url"]
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != CATCH_ALL:
            assert rule.rule.startswith(prefix + "/")
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(prefix) :])
            routes |= {(path, m.lower()) for m in (rule.methods or set()) - IGNORED_METHODS}
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert routes == documented
    assert len(routes) == 61


def test_every_operation_documents_401_and_its_errors_use_the_error_schema(spec: dict) -> None:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert "401" in operation["responses"], (path, method)
    for response in spec["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


@pytest.mark.parametrize(
    ("schema", "fields"),
    [
        ("TrialCreate", TRIAL_FIELDS),
        ("TrialUpdate", TRIAL_FIELDS),
        ("SiteCreate", SITE_FIELDS),
        ("SubjectCreate", SUBJECT_FIELDS),
        ("SubjectUpdate", SUBJECT_FIELDS),
        ("TimePointCreate", TIMEPOINT_FIELDS),
        ("DestinationCreate", DESTINATION_FIELDS),
        ("DestinationUpdate", DESTINATION_FIELDS),
        ("TimePointConfirmation", CONFIRMATION_FIELDS),
    ],
)
def test_input_schemas_name_exactly_the_fields_the_services_accept(
    spec: dict, schema: str, fields: dict
) -> None:
    assert set(spec["components"]["schemas"][schema]["properties"]) == set(fields)


def test_responses_conform_to_the_document(
    client: FlaskClient,
    spec: dict,
    admin: dict[str, str],
    make_trial: Callable[..., Trial],
) -> None:
    trial = make_trial("DOC-1", irb_expiry="2099-01-01")
    base = f"/api/v1/trials/{trial.id}"
    conforms(spec, "Trial", client.get(base, headers=admin).get_json())
    conforms(spec, "TrialList", client.get("/api/v1/trials", headers=admin).get_json())
    site = client.post(f"{base}/sites", json={"site_id": "S1"}, headers=admin).get_json()
    conforms(spec, "Site", site)
    tp = client.post(
        f"{base}/timepoints",
        json={"timepoint_id": "BL", "expected_exams": [{"modality": "MR"}]},
        headers=admin,
    ).get_json()
    conforms(spec, "TimePoint", tp)
    subject = client.post(
        f"{base}/subjects",
        json={"subject_id": "001", "site_id": "S1", "baseline_date": "2024-01-01"},
        headers=admin,
    ).get_json()
    conforms(spec, "Subject", subject)
    conforms(spec, "SubjectList", client.get(f"{base}/subjects", headers=admin).get_json())
    conforms(spec, "Completeness", client.get(f"{base}/completeness", headers=admin).get_json())
    conforms(spec, "Me", client.get("/api/v1/me", headers=admin).get_json())
    imported = client.post(
        f"{base}/subjects/import?commit=true",
        data=b"subject_id,identifiers\n001,A|B\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 422
    conforms(spec, "ImportResult", imported.get_json())
    destination = client.post(
        f"{base}/destinations",
        json={"name": "s", "kind": "sftp", "host": "127.0.0.1", "port": 9, "username": "u"},
        headers=admin,
    ).get_json()
    conforms(spec, "Destination", destination)
    conforms(spec, "DestinationList", client.get(f"{base}/destinations", headers=admin).get_json())
    tested = client.post(f"{base}/destinations/{destination['id']}/test", headers=admin)
    conforms(spec, "ConnectionTest", tested.get_json())
    conforms(spec, "Error", client.get(f"{base}/sites/999", headers=admin).get_json())
    conforms(spec, "Error", client.get("/api/v1/me").get_json())
