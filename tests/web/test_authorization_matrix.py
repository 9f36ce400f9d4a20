"""Every route x every role, allowed and denied, on an open trial and on an IRB-expired one.

The table below must name every route of the app: a new route without an entry fails
`test_every_route_is_in_the_matrix`, so access control is decided, never forgotten.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token, login
from trialship.app import Runtime
from trialship.registry.discs import Disc, DiscSet
from trialship.registry.models import Exam, Job, Role
from trialship.registry.submissions import AutomationRule, Submission
from trialship.services import destinations, subjects, timepoints, trials, users

ROLES = ["anonymous", "outsider", "viewer", "media", "coordinator", "trial_admin", "admin"]
# Who holds each need (anonymous holds only "public").
HOLDERS = {
    "public": set(ROLES),
    "user": set(ROLES) - {"anonymous"},
    "read": {"viewer", "media", "coordinator", "trial_admin", "admin"},
    "registry": {"coordinator", "trial_admin", "admin"},
    "media": {"media", "trial_admin", "admin"},
    "trial_admin": {"trial_admin", "admin"},
    "admin": {"admin"},
}
# Needs that write to a trial: on a locked (IRB-expired) trial only admins keep them.
WRITES = {"registry", "media", "trial_admin"}

NEEDS: dict[tuple[str, str], str] = {
    ("GET", "health.healthz"): "public",
    ("GET", "auth.login"): "public",
    ("POST", "auth.login"): "public",
    ("POST", "auth.logout"): "user",
    ("GET", "trials.index"): "user",
    ("GET", "audit.index"): "user",
    ("GET", "admin.tokens"): "user",
    ("POST", "admin.create_token"): "user",
    ("POST", "admin.revoke_token"): "admin",  # the token belongs to someone else
    ("GET", "admin.users"): "admin",
    ("POST", "admin.users"): "admin",
    ("POST", "admin.update_user"): "admin",
    ("GET", "trials.new"): "admin",
    ("POST", "trials.new"): "admin",
    ("GET", "trials.detail"): "read",
    ("GET", "trials.completeness"): "read",
    ("GET", "trials.profile"): "read",
    ("GET", "trials.edit"): "registry",
    ("POST", "trials.edit"): "registry",
    ("GET", "trials.new_site"): "registry",
    ("POST", "trials.new_site"): "registry",
    ("GET", "trials.edit_site"): "registry",
    ("POST", "trials.edit_site"): "registry",
    ("GET", "subjects.new"): "registry",
    ("POST", "subjects.new"): "registry",
    ("GET", "subjects.edit"): "registry",
    ("POST", "subjects.edit"): "registry",
    ("GET", "subjects.import_example"): "registry",
    ("GET", "subjects.import_upload"): "registry",
    ("POST", "subjects.import_upload"): "registry",
    ("POST", "subjects.import_commit"): "registry",
    ("GET", "timepoints.new"): "registry",
    ("POST", "timepoints.new"): "registry",
    ("GET", "timepoints.edit"): "registry",
    ("POST", "timepoints.edit"): "registry",
    ("GET", "members.new"): "trial_admin",
    ("POST", "members.new"): "trial_admin",
    ("POST", "members.change_role"): "trial_admin",
    ("POST", "members.remove"): "trial_admin",
    ("GET", "exams.import_upload"): "registry",
    ("POST", "exams.import_upload"): "registry",
    ("GET", "exams.job"): "read",
    ("GET", "exams.index"): "read",
    ("GET", "exams.show"): "read",
    ("POST", "exams.confirm_timepoint"): "registry",
    ("POST", "exams.pixels_reviewed"): "registry",
    ("GET", "exams.receipt"): "read",
    ("GET", "exams.attribute_report"): "read",
    ("GET", "exams.quarantine"): "read",
    ("GET", "exams.key"): "trial_admin",
    ("GET", "exams.key_csv"): "trial_admin",
    ("GET", "destinations.index"): "read",
    ("GET", "destinations.show"): "read",
    ("GET", "destinations.new"): "trial_admin",
    ("POST", "destinations.new"): "trial_admin",
    ("GET", "destinations.edit"): "trial_admin",
    ("POST", "destinations.edit"): "trial_admin",
    ("POST", "destinations.test"): "trial_admin",
    ("POST", "destinations.pin"): "trial_admin",
    ("GET", "discs.index"): "read",
    ("POST", "discs.plan"): "media",
    ("POST", "discs.build"): "media",
    ("GET", "discs.job"): "read",
    ("GET", "discs.image"): "media",
    ("GET", "discs.label"): "media",
    ("GET", "discs.label_png"): "media",
    ("POST", "discs.burn"): "media",
    ("POST", "discs.mark_burned"): "media",
    ("POST", "discs.rebuild_set"): "media",
    ("POST", "discs.delete_set"): "media",
    ("GET", "submissions.index"): "read",
    ("POST", "submissions.create"): "media",
    ("GET", "submissions.show"): "read",
    ("POST", "submissions.cancel"): "media",
    ("POST", "submissions.retry"): "media",
    ("GET", "submissions.receipt"): "read",
    ("POST", "submissions.add_rule"): "trial_admin",
    ("POST", "submissions.toggle_rule"): "trial_admin",
    ("POST", "submissions.delete_rule"): "trial_admin",
    # The API (bearer tokens).
    ("GET", "api.me"): "user",
    ("GET", "api.openapi"): "user",
    ("GET", "api.list_trials"): "user",
    ("POST", "api.create_trial"): "admin",
    ("GET", "api.get_trial"): "read",
    ("PATCH", "api.update_trial"): "registry",
    ("GET", "api.get_trial_profile"): "read",
    ("GET", "api.completeness"): "read",
    ("GET", "api.list_sites"): "read",
    ("POST", "api.create_site"): "registry",
    ("GET", "api.get_site"): "read",
    ("PATCH", "api.update_site"): "registry",
    ("GET", "api.list_subjects"): "read",
    ("POST", "api.create_subject"): "registry",
    ("GET", "api.get_subject"): "read",
    ("PATCH", "api.update_subject"): "registry",
    ("POST", "api.import_subjects"): "registry",
    ("GET", "api.list_timepoints"): "read",
    ("POST", "api.create_timepoint"): "registry",
    ("GET", "api.get_timepoint"): "read",
    ("PATCH", "api.update_timepoint"): "registry",
    ("POST", "api.create_import"): "registry",
    ("GET", "api.get_job"): "read",
    ("GET", "api.list_exams"): "read",
    ("GET", "api.get_exam"): "read",
    ("GET", "api.get_exam_receipt"): "read",
    ("GET", "api.get_exam_report"): "read",
    ("POST", "api.confirm_exam_timepoint"): "registry",
    ("POST", "api.review_exam_pixels"): "registry",
    ("GET", "api.list_quarantine"): "read",
    ("GET", "api.get_key"): "trial_admin",
    ("GET", "api.list_destinations"): "read",
    ("POST", "api.create_destination"): "trial_admin",
    ("GET", "api.get_destination"): "read",
    ("PATCH", "api.update_destination"): "trial_admin",
    ("POST", "api.test_destination"): "trial_admin",
    ("POST", "api.pin_destination"): "trial_admin",
    ("POST", "api.plan_disc_set"): "media",
    ("POST", "api.create_disc_set"): "media",
    ("GET", "api.list_disc_sets"): "read",
    ("GET", "api.get_disc_set"): "read",
    ("GET", "api.download_disc_image"): "media",
    ("GET", "api.download_disc_label"): "media",
    ("POST", "api.burn_disc"): "media",
    ("POST", "api.mark_disc_burned"): "media",
    ("POST", "api.rebuild_disc_set"): "media",
    ("DELETE", "api.delete_disc_set"): "media",
    ("GET", "api.list_submissions"): "read",
    ("POST", "api.create_submission"): "media",
    ("GET", "api.get_submission"): "read",
    ("POST", "api.cancel_submission"): "media",
    ("POST", "api.retry_submission"): "media",
    ("GET", "api.get_submission_receipt"): "read",
    ("GET", "api.list_rules"): "read",
    ("POST", "api.create_rule"): "trial_admin",
    ("PATCH", "api.update_rule"): "trial_admin",
    ("DELETE", "api.delete_rule"): "trial_admin",
    ("GET", "api.list_jobs"): "user",
    ("GET", "api.list_audit"): "user",  # as the audit page: each sees their trials' events
    # The matrix's job is a queued import: cancelling or retrying one is a registry write.
    ("POST", "api.cancel_job"): "registry",
    ("POST", "api.retry_job"): "registry",
}
NOT_IN_MATRIX = {"static", "api.unmatched"}  # files, and the API's JSON 404 for unknown URLs


@dataclass
class World:
    ids: dict[str, int]
    tokens: dict[str, str]


def _seed(runtime: Runtime, *, locked: bool) -> World:
    today = runtime.today()
    with runtime.db.unit_of_work() as session:
        expiry = today - dt.timedelta(days=1) if locked else today + dt.timedelta(days=365)
        trial = trials.create_trial(
            session,
            SYSTEM,
            {
                "protocol_id": "ACM-301",
                "sponsor_name": "Acme",
                "short_name": "Acme 301",
                "irb_expiry": expiry.isoformat(),
            },
        )
        site = trials.add_site(session, SYSTEM, trial, {"site_id": "S01"}, today)
        subject = subjects.add_subject(
            session,
            SYSTEM,
            runtime.vault,
            trial,
            {"subject_id": "SUBJ-001", "site_id": "S01"},
            today,
        )
        timepoint = timepoints.add_timepoint(session, SYSTEM, trial, {"timepoint_id": "BL"}, today)
        target = users.create_user(
            session, SYSTEM, email="target@example.org", password="target password 1"
        )
        from trialship.services.memberships import set_membership

        set_membership(session, SYSTEM, trial, target, Role.VIEWER, today)
        target_token, _ = users.create_token(session, SYSTEM, target, "target's")
        tokens = {}
        for role in ROLES[1:]:
            user = users.create_user(
                session,
                SYSTEM,
                email=f"{role}@example.org",
                password="a long password",
                is_admin=role == "admin",
            )
            if role in {"viewer", "media", "coordinator", "trial_admin"}:
                set_membership(session, SYSTEM, trial, user, role, today)
            tokens[role] = users.create_token(session, SYSTEM, user, "matrix")[1]
        exam = Exam(
            trial_id=trial.id,
            subject_pk=subject.id,
            timepoint_pk=timepoint.id,
            timepoint_confirmed=False,
            receipt={"payload": {}, "signature": {}},
        )
        job = Job(kind="import", target="upload:none", trial_id=trial.id)
        # Nothing listens on port 9: a connection test fails at once.
        destination = destinations.add_destination(
            session,
            SYSTEM,
            runtime.vault,
            trial,
            {"name": "sponsor", "kind": "dicomweb", "base_url": "http://127.0.0.1:9/dicom-web"},
            today,
        )
        # A set whose build never ran: its disc is not ready (downloads 404, burns 422).
        disc_job = Job(kind="disc_build", target="disc_set:none", trial_id=trial.id)
        disc_set = DiscSet(trial_id=trial.id, created_by_label="tests")
        disc = Disc(disc_set=disc_set, index=1, medium="cd80")
        session.add_all([exam, job, disc_job, disc_set, disc])
        session.flush()
        submission = Submission(
            trial_id=trial.id,
            destination_pk=destination.id,
            scope="exam",
            scope_label=f"exam {exam.id}",
            exam_pks=[exam.id],
            receipt={"payload": {}, "signature": {}},
        )
        rule = AutomationRule(trial_id=trial.id, destination_pk=destination.id)
        session.add_all([submission, rule])
        session.flush()
        ids = {
            "exam_pk": exam.id,
            "destination_pk": destination.id,
            "job_id": job.id,
            "set_id": disc_set.id,
            "disc_pk": disc.id,
            "submission_pk": submission.id,
            "rule_pk": rule.id,
            "trial_id": trial.id,
            "site_pk": site.id,
            "subject_pk": subject.id,
            "timepoint_pk": timepoint.id,
            "user_id": target.id,
            "token_id": target_token.id,
        }
    return World(ids, tokens)


def _rules(app: Flask) -> dict[tuple[str, str], str]:
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_IN_MATRIX:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found[(method, rule.endpoint)] = rule.rule
    return found


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    assert set(_rules(app)) == set(NEEDS)


def _expected(need: str, role: str, *, locked: bool) -> bool:
    allowed = role in HOLDERS[need]
    if locked and need in WRITES:
        allowed = role == "admin"
    return allowed


CASES = [
    (method, endpoint, role, locked)
    for (method, endpoint) in NEEDS
    for role in ROLES
    for locked in (False, True)
    if not locked or NEEDS[(method, endpoint)] in WRITES | {"read"}
]


@pytest.mark.parametrize(
    ("method", "endpoint", "role", "locked"),
    CASES,
    ids=[f"{m} {e} {r}{' locked' if lk else ''}" for m, e, r, lk in CASES],
)
def test_route_is_allowed_exactly_for_its_roles(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    method: str,
    endpoint: str,
    role: str,
    locked: bool,
) -> None:
    world = _seed(runtime, locked=locked)
    rule = _rules(app)[(method, endpoint)]
    url = re.sub(r"<int:(\w+)>", lambda m: str(world.ids[m.group(1)]), rule)
    is_api = url.startswith("/api/")
    headers = {}
    data: dict[str, str] = {}
    if is_api:
        if role != "anonymous":
            headers["Authorization"] = f"Bearer {world.tokens[role]}"
        response = client.open(
            url, method=method, headers=headers, json={} if method in {"POST", "PATCH"} else None
        )
    else:
        if role != "anonymous":
            login(client, f"{role}@example.org", "a long password")
            if method == "POST":
                data["csrf_token"] = csrf_token(client, "/tokens")
        response = client.open(url, method=method, data=data)
    status = response.status_code
    to_login = status == 302 and "/login" in response.headers.get("Location", "")
    if endpoint == "auth.logout":
        to_login = to_login and role == "anonymous"  # logging out lands on the login page
    body = response.get_data(as_text=True)[:300]
    if _expected(NEEDS[(method, endpoint)], role, locked=locked):
        # An empty login form is a wrong password (401): still a page anyone may use.
        refused = {403} if endpoint == "auth.login" else {401, 403}
        assert status not in refused and not to_login, f"{status} {body}"
        assert status < 500, body
    elif role == "anonymous":
        assert (status == 401) if is_api else to_login, f"{status} {body}"
    else:
        assert status == 403, f"{status} {body}"
