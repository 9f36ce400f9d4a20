"""Trial pages through the Flask client: create, edit, the IRB lock, sites."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from trialship.registry.models import Role

NEW_TRIAL = {"protocol_id": "ONC-7", "sponsor_name": "Acme Oncology", "short_name": "Lungs"}


def post(client: FlaskClient, path: str, data: dict[str, str]):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **data})


def test_admin_creates_a_trial_through_the_form_and_sees_its_page(admin_client) -> None:
    form = admin_client.get("/trials/new").get_data(as_text=True)
    assert 'name="protocol_id"' in form and 'name="deid_profile"' in form and 'id="save"' in form
    response = post(
        admin_client,
        "/trials/new",
        {**NEW_TRIAL, "deid_profile": '[deid]\noptions = ["clean_descriptors"]\n'},
    )
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Trial ONC-7 created." in page
    for section in ("overview", "sites", "subjects", "schedule", "completeness-section", "members"):
        assert f'id="{section}"' in page
    assert "Acme Oncology" in page and "clean_descriptors" in page
    assert 'id="edit-trial"' in page and "banner-locked" not in page


def test_new_trial_with_a_bad_field_rerenders_the_form_naming_it(admin_client) -> None:
    response = post(admin_client, "/trials/new", {**NEW_TRIAL, "sponsor_name": "A\\B"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "sponsor_name: must not contain a backslash" in page
    assert 'id="sponsor_name" value="A\\B" required aria-invalid="true"' in page
    assert 'value="ONC-7"' in page  # the other fields are refilled

    response = post(admin_client, "/trials/new", {**NEW_TRIAL, "deid_profile": "[broken"})
    assert response.status_code == 422
    assert "deid_profile: is not valid TOML" in response.get_data(as_text=True)

    response = post(
        admin_client,
        "/trials/new",
        {**NEW_TRIAL, "deid_profile": '[deid]\noptions = ["retain_everything"]\n'},
    )
    assert response.status_code == 422
    assert "deid.options" in response.get_data(as_text=True)
    assert admin_client.get("/").get_data(as_text=True).count("ONC-7") == 0  # nothing saved


def test_duplicate_protocol_id_is_a_conflict(admin_client, make_trial) -> None:
    make_trial("ONC-7")
    response = post(admin_client, "/trials/new", NEW_TRIAL)
    assert response.status_code == 409
    assert "protocol_id: a trial with protocol ID ONC-7 exists already" in response.get_data(
        as_text=True
    )


def test_non_admin_cannot_open_the_new_trial_form(client, make_user) -> None:
    make_user("c@example.org")
    login(client, "c@example.org")
    assert client.get("/trials/new").status_code == 403


def test_coordinator_edits_trial_fields_but_not_the_admin_ones(client, make_user, make_trial):
    trial = make_trial("ONC-7")
    make_user("c@example.org", trial=trial, role=Role.COORDINATOR)
    login(client, "c@example.org")
    form = client.get(f"/trials/{trial.id}/edit").get_data(as_text=True)
    assert 'name="protocol_id" id="protocol_id" value="ONC-7" required disabled' in form
    response = post(
        client,
        f"/trials/{trial.id}/edit",
        {"sponsor_name": "Acme", "short_name": "Lungs 2", "missing_after_days": "45"},
    )
    assert response.status_code == 302
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "Lungs 2" in page and "45 days past the window" in page
    # A forged request for an admin-only field is refused by the service.
    response = post(client, f"/trials/{trial.id}/edit", {"status": "closed"})
    assert response.status_code == 403
    assert "only an administrator" in response.get_data(as_text=True)


def test_edit_with_a_bad_value_names_the_field_and_saves_nothing(admin_client, make_trial):
    trial = make_trial("ONC-7")
    response = post(
        admin_client,
        f"/trials/{trial.id}/edit",
        {"short_name": "Renamed", "missing_after_days": "many"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "missing_after_days: must be a whole number" in page and 'value="Renamed"' in page
    assert "Renamed" not in admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)


def test_irb_expired_trial_shows_the_banner_and_refuses_a_coordinator(
    client, make_user, make_trial, runtime
) -> None:
    expired = runtime.today() - dt.timedelta(days=1)
    trial = make_trial("ONC-7", irb_expiry=expired)
    make_user("c@example.org", trial=trial, role=Role.COORDINATOR)
    make_user("admin@example.org", admin=True)
    login(client, "c@example.org")
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert 'class="banner-locked"' in page and f"expired on {expired.isoformat()}" in page
    assert 'id="edit-trial"' not in page and 'id="add-site"' not in page
    assert client.get(f"/trials/{trial.id}/edit").status_code == 403
    response = post(client, f"/trials/{trial.id}/sites/new", {"site_id": "S1"})
    assert response.status_code == 403

    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "admin@example.org")
    assert 'class="banner-locked"' in client.get(f"/trials/{trial.id}").get_data(as_text=True)
    renewed = (runtime.today() + dt.timedelta(days=365)).isoformat()
    response = post(client, f"/trials/{trial.id}/edit", {**NEW_TRIAL, "irb_expiry": renewed})
    assert response.status_code == 302
    assert "banner-locked" not in client.get(f"/trials/{trial.id}").get_data(as_text=True)


def test_viewer_reads_the_trial_without_edit_buttons(client, make_user, make_trial) -> None:
    trial = make_trial("ONC-7")
    make_user("v@example.org", trial=trial, role=Role.VIEWER)
    login(client, "v@example.org")
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "ONC-7" in page
    for button in ("edit-trial", "add-site", "add-subject", "add-timepoint", "member-form"):
        assert f'id="{button}"' not in page
    assert client.get(f"/trials/{trial.id}/sites/new").status_code == 403


def test_outsider_gets_403_and_unknown_trial_404(client, make_user, make_trial) -> None:
    trial = make_trial("ONC-7")
    make_user("o@example.org")
    login(client, "o@example.org")
    assert client.get(f"/trials/{trial.id}").status_code == 403
    assert client.get("/trials/999").status_code == 404


def test_sites_are_added_edited_and_duplicates_refused(admin_client, make_trial) -> None:
    trial = make_trial("ONC-7")
    response = post(
        admin_client, f"/trials/{trial.id}/sites/new", {"site_id": "BER-01", "name": "Berlin"}
    )
    assert response.status_code == 302
    page = admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "BER-01" in page and "Berlin" in page

    response = post(admin_client, f"/trials/{trial.id}/sites/new", {"site_id": "BER-01"})
    assert response.status_code == 409
    assert "site_id: site BER-01 exists already" in response.get_data(as_text=True)

    site_pk = trial_site_pk(admin_client, trial.id)
    edit = admin_client.get(f"/trials/{trial.id}/sites/{site_pk}/edit").get_data(as_text=True)
    assert 'value="BER-01"' in edit
    response = post(
        admin_client,
        f"/trials/{trial.id}/sites/{site_pk}/edit",
        {"site_id": "BER-02", "name": "Charité"},
    )
    assert response.status_code == 302
    assert "Charité" in admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)
    response = post(admin_client, f"/trials/{trial.id}/sites/{site_pk}/edit", {"site_id": ""})
    assert response.status_code == 422
    assert "site_id: is required" in response.get_data(as_text=True)


def trial_site_pk(client: FlaskClient, trial_id: int) -> int:
    page = client.get(f"/trials/{trial_id}").get_data(as_text=True)
    marker = 'id="edit-site-'
    return int(page.split(marker, 1)[1].split('"', 1)[0])


def test_a_replace_template_too_long_for_a_registered_subject_is_refused(
    admin_client, make_trial
) -> None:
    trial = make_trial("ONC-7")
    post(admin_client, f"/trials/{trial.id}/subjects/new", {"subject_id": "SUBJ-0000000042"})
    profile = '[deid]\n[deid.replace]\nStationName = "ST-{subject_id}"\n'
    response = post(admin_client, f"/trials/{trial.id}/edit", {"deid_profile": profile})
    assert response.status_code == 422
    assert (
        "deid.replace.StationName: gives 18 characters (&#39;ST-SUBJ-0000000042&#39;); DICOM SH "
        "allows 16 for subject SUBJ-0000000042" in response.get_data(as_text=True)
    )
    short = '[deid]\n[deid.replace]\nStationName = "{subject_id}"\n'
    assert (
        post(admin_client, f"/trials/{trial.id}/edit", {"deid_profile": short}).status_code == 302
    )
