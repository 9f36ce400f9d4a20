"""Subjects through the forms: validation names the field, identifiers are never shown back."""

from __future__ import annotations

import html

import pytest
from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token, login
from trialship.registry.models import Role, Subject
from trialship.services import trials


def post(client: FlaskClient, path: str, data: dict[str, str]):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **data})


@pytest.fixture
def trial(make_trial, runtime):
    trial = make_trial("ONC-7")
    with runtime.db.unit_of_work() as session:
        trials.add_site(session, SYSTEM, session.merge(trial), {"site_id": "BER"}, runtime.today())
    return trial


def subjects_of(runtime, trial) -> dict[str, Subject]:
    with runtime.db.unit_of_work() as session:
        rows = session.query(Subject).filter_by(trial_id=trial.id).all()
        return {s.subject_id: (s, len(s.identifiers)) for s in rows}


def test_coordinator_adds_a_subject_and_sees_it_listed(client, make_user, trial, runtime):
    make_user("c@example.org", trial=trial, role=Role.COORDINATOR)
    login(client, "c@example.org")
    form = client.get(f"/trials/{trial.id}/subjects/new").get_data(as_text=True)
    assert 'id="subject-form"' in form and '<option value="BER"' in form
    response = post(
        client,
        f"/trials/{trial.id}/subjects/new",
        {
            "subject_id": "S-001",
            "reading_id": "R-9",
            "site_id": "BER",
            "status": "enrolled",
            "consent_distribution": "on",
            "baseline_date": "2024-03-18",
            "identifiers": "MRN12345|HOSP-A; 98765|HOSP-B",
        },
    )
    assert response.status_code == 302
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    row = page.split('<td class="subject-id">S-001</td>', 1)[1].split("</tr>", 1)[0]
    assert "R-9" in row and "BER" in row and "2024-03-18" in row and "yes" in row
    assert ">2</td>" in row  # the count of identifiers, never the identifiers
    assert "MRN12345" not in page and "98765" not in page


@pytest.mark.parametrize(
    ("subject_id", "status", "message"),
    [
        ("S-001", 409, "subject_id: subject S-001 exists already in this trial"),
        ("S" * 65, 422, "subject_id: is 65 characters long; DICOM LO allows 64"),
        ("S\\001", 422, "subject_id: must not contain a backslash"),
        ("", 422, "subject_id: is required"),
        ("S^001", 422, "subject_id: must not contain ^ or ="),
    ],
    ids=["duplicate", "65-chars", "backslash", "empty", "caret"],
)
def test_a_bad_subject_id_is_refused_naming_the_field(
    admin_client, trial, runtime, subject_id, status, message
) -> None:
    post(admin_client, f"/trials/{trial.id}/subjects/new", {"subject_id": "S-001"})
    response = post(
        admin_client,
        f"/trials/{trial.id}/subjects/new",
        {"subject_id": subject_id, "reading_id": "R-2", "identifiers": "MRN777|HOSP"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert html.escape(message, quote=False) in page
    assert 'id="subject_id"' in page and 'aria-invalid="true"' in page
    assert 'value="R-2"' in page  # refilled
    assert "MRN777" not in page  # identifiers are not sent back
    assert set(subjects_of(runtime, trial)) == {"S-001"}


def test_bad_date_and_unknown_site_name_their_fields(admin_client, trial) -> None:
    response = post(
        admin_client,
        f"/trials/{trial.id}/subjects/new",
        {"subject_id": "S-1", "baseline_date": "18.03.2024"},
    )
    assert response.status_code == 422
    assert "baseline_date: must be a date as YYYY-MM-DD" in response.get_data(as_text=True)
    response = post(
        admin_client, f"/trials/{trial.id}/subjects/new", {"subject_id": "S-1", "site_id": "XYZ"}
    )
    assert response.status_code == 422
    assert "site_id: no site" in response.get_data(as_text=True)


def test_markup_and_sql_are_stored_verbatim_and_shown_escaped(admin_client, trial, runtime):
    markup = "<script>alert(1)</script>"
    sql = "x'); DROP TABLE subjects;--"
    for subject_id, reading_id in ((markup, sql), (sql, markup)):
        response = post(
            admin_client,
            f"/trials/{trial.id}/subjects/new",
            {"subject_id": subject_id, "reading_id": reading_id},
        )
        assert response.status_code == 302
    stored = subjects_of(runtime, trial)
    assert set(stored) == {markup, sql}
    assert stored[markup][0].reading_id == sql
    for path in (f"/trials/{trial.id}", f"/trials/{trial.id}/completeness", "/"):
        page = admin_client.get(path).get_data(as_text=True)
        assert markup not in page
    page = admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x&#39;); DROP TABLE subjects;--" in page


def test_editing_keeps_identifiers_unless_new_ones_are_typed(admin_client, trial, runtime):
    post(
        admin_client,
        f"/trials/{trial.id}/subjects/new",
        {"subject_id": "S-001", "identifiers": "MRN1|H; MRN2|H"},
    )
    (subject, count) = subjects_of(runtime, trial)["S-001"]
    assert count == 2
    path = f"/trials/{trial.id}/subjects/{subject.id}/edit"
    form = admin_client.get(path).get_data(as_text=True)
    assert 'value="S-001"' in form and "2 on file" in form and "MRN1" not in form
    response = post(
        admin_client, path, {"subject_id": "S-001", "status": "withdrawn", "identifiers": ""}
    )
    assert response.status_code == 302
    subject, count = subjects_of(runtime, trial)["S-001"]
    assert count == 2 and subject.status.value == "withdrawn"
    response = post(admin_client, path, {"subject_id": "S-001", "identifiers": "MRN3|H"})
    assert response.status_code == 302
    assert subjects_of(runtime, trial)["S-001"][1] == 1


def test_a_failed_edit_saves_nothing(admin_client, trial, runtime) -> None:
    for sid, ident in (("S-001", "MRN1|H"), ("S-002", "MRN2|H")):
        post(
            admin_client,
            f"/trials/{trial.id}/subjects/new",
            {"subject_id": sid, "identifiers": ident},
        )
    subject, _ = subjects_of(runtime, trial)["S-002"]
    # The new reading ID is valid but the identifier belongs to S-001: nothing may change.
    response = post(
        admin_client,
        f"/trials/{trial.id}/subjects/{subject.id}/edit",
        {"subject_id": "S-002", "reading_id": "R-NEW", "identifiers": "MRN1|H"},
    )
    assert response.status_code == 409
    assert "identifiers: this patient identifier belongs to subject S-001" in response.get_data(
        as_text=True
    )
    assert subjects_of(runtime, trial)["S-002"][0].reading_id == ""


def test_subject_of_another_trial_is_not_found(admin_client, trial, make_trial) -> None:
    other = make_trial("OTHER-1")
    post(admin_client, f"/trials/{other.id}/subjects/new", {"subject_id": "X-1"})
    page = admin_client.get(f"/trials/{other.id}").get_data(as_text=True)
    pk = page.split('id="edit-subject-', 1)[1].split('"', 1)[0]
    assert admin_client.get(f"/trials/{trial.id}/subjects/{pk}/edit").status_code == 404
