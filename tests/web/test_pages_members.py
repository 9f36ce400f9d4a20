"""Trial members: trial admins and admins add, change and remove; others cannot."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from trialship.registry.models import Membership, Role


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **(data or {})})


def roles(runtime, trial) -> dict[str, str]:
    with runtime.db.unit_of_work() as session:
        rows = session.query(Membership).filter_by(trial_id=trial.id).all()
        return {m.user.email: m.role.value for m in rows}


def test_trial_admin_adds_changes_and_removes_a_member(client, make_user, make_trial, runtime):
    trial = make_trial("ONC-7")
    make_user("ta@example.org", trial=trial, role=Role.TRIAL_ADMIN)
    newcomer = make_user("new@example.org")
    login(client, "ta@example.org")
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert 'id="member-form"' in page

    response = post(
        client, f"/trials/{trial.id}/members/new", {"email": "New@Example.org", "role": "viewer"}
    )
    assert response.status_code == 302
    assert roles(runtime, trial)["new@example.org"] == "viewer"
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "new@example.org" in page and f'id="change-role-{newcomer.id}"' in page

    response = post(
        client, f"/trials/{trial.id}/members/{newcomer.id}/role", {"role": "coordinator"}
    )
    assert response.status_code == 302
    assert roles(runtime, trial)["new@example.org"] == "coordinator"

    assert post(client, f"/trials/{trial.id}/members/{newcomer.id}/remove").status_code == 302
    assert "new@example.org" not in roles(runtime, trial)


def test_adding_an_unknown_email_or_role_names_the_field(admin_client, make_user, make_trial):
    trial = make_trial("ONC-7")
    make_user("known@example.org")
    response = post(
        admin_client,
        f"/trials/{trial.id}/members/new",
        {"email": "nobody@example.org", "role": "viewer"},
    )
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "email: no user nobody@example.org" in page and 'value="nobody@example.org"' in page
    response = post(
        admin_client,
        f"/trials/{trial.id}/members/new",
        {"email": "known@example.org", "role": "boss"},
    )
    assert response.status_code == 422
    assert "role: must be one of viewer, media, coordinator, trial_admin" in response.get_data(
        as_text=True
    )


def test_coordinator_cannot_manage_members(client, make_user, make_trial, runtime) -> None:
    trial = make_trial("ONC-7")
    make_user("c@example.org", trial=trial, role=Role.COORDINATOR)
    viewer = make_user("v@example.org", trial=trial, role=Role.VIEWER)
    login(client, "c@example.org")
    page = client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "v@example.org" in page and 'id="member-form"' not in page
    assert client.get(f"/trials/{trial.id}/members/new").status_code == 403
    response = post(
        client, f"/trials/{trial.id}/members/new", {"email": "v@example.org", "role": "trial_admin"}
    )
    assert response.status_code == 403
    assert post(client, f"/trials/{trial.id}/members/{viewer.id}/remove").status_code == 403
    assert roles(runtime, trial)["v@example.org"] == "viewer"
