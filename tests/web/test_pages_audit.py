"""The audit log page: filters, pagination, and only the trials a user belongs to."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token, login
from trialship.registry.models import Role
from trialship.services import audit, trials


def post(client: FlaskClient, path: str, data: dict[str, str]):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **data})


def add_sites(runtime, trial, count: int) -> None:
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        for i in range(count):
            trials.add_site(session, SYSTEM, t, {"site_id": f"S{i:03d}"}, runtime.today())


def test_admin_filters_by_trial_user_and_action(admin_client, make_trial, runtime) -> None:
    one, two = make_trial("ONE-1"), make_trial("TWO-2")
    post(admin_client, f"/trials/{one.id}/sites/new", {"site_id": "<b>BER</b>"})
    page = admin_client.get("/audit").get_data(as_text=True)
    assert 'id="audit-table"' in page and "trial.create" in page and "login" in page
    assert "&lt;b&gt;BER&lt;/b&gt;" in page and "<b>BER</b>" not in page  # details escaped

    page = admin_client.get(f"/audit?trial={two.id}").get_data(as_text=True)
    assert 'data-action="site.create"' not in page and 'data-action="trial.create"' in page
    page = admin_client.get("/audit?action=site.create").get_data(as_text=True)
    assert page.count('data-action="site.create"') == 1 and 'data-action="login"' not in page
    with runtime.db.unit_of_work() as session:
        admin_id = session.query(audit.AuditEvent.user_id).filter_by(action="login").scalar()
    page = admin_client.get(f"/audit?user={admin_id}").get_data(as_text=True)
    assert 'data-action="site.create"' in page and 'data-action="trial.create"' not in page


def test_non_admin_sees_only_events_of_their_trials(client, make_user, make_trial):
    mine, theirs = make_trial("MINE-1"), make_trial("THEIRS-2")
    make_user("c@example.org", trial=mine, role=Role.VIEWER)
    login(client, "c@example.org")
    page = client.get("/audit").get_data(as_text=True)
    assert "MINE-1" in page and "THEIRS-2" not in page
    assert 'data-action="login"' not in page  # events outside any trial are for admins
    assert 'name="user"' not in page
    assert client.get(f"/audit?trial={theirs.id}").status_code == 403
    assert client.get(f"/audit?trial={mine.id}").status_code == 200


def test_audit_is_paginated(admin_client, make_trial, runtime) -> None:
    trial = make_trial("ONE-1")
    add_sites(runtime, trial, 60)
    page = admin_client.get(f"/audit?trial={trial.id}").get_data(as_text=True)
    assert "61 events, page 1 of 2." in page and 'id="next-page"' in page
    assert page.count("<tr data-action=") == 50
    page = admin_client.get(f"/audit?trial={trial.id}&page=2").get_data(as_text=True)
    assert page.count("<tr data-action=") == 11 and 'id="prev-page"' in page
    assert admin_client.get("/audit?page=-3&trial=abc").status_code == 200
