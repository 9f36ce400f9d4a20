"""API routes of submissions, automation rules and jobs: submit (a queued job), list, get with
progress, cancel, retry, receipt; rules; every job's list, cancel and retry.

Registered on the API blueprint (imported by `trialship.web.api`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from werkzeug.wrappers import Response

from trialship.errors import ValidationError
from trialship.jobs.tasks import enqueue_job, enqueue_submission
from trialship.registry.delivery import Destination
from trialship.registry.models import Trial
from trialship.services import automation, job_control, submissions
from trialship.services.authz import Capability, require
from trialship.services.destinations import destination_by_name, get_destination
from trialship.services.import_jobs import get_job
from trialship.web.api import serialize
from trialship.web.api import serialize_submissions as shape
from trialship.web.api.views import _trial, bp, json_body
from trialship.web.context import actor, commit, db, runtime, today


def _trial_for(trial_id: int, capability: Capability) -> Trial:
    """The trial, after refusing (403) a caller without `capability`, before any body check."""
    trial = _trial(trial_id)
    require(db(), actor(), trial, capability, today())
    return trial


def _destination(trial: Trial, value: object) -> Destination:
    if isinstance(value, int) and not isinstance(value, bool):
        return get_destination(db(), trial, value)
    if isinstance(value, str) and value:
        return destination_by_name(db(), trial, value)
    raise ValidationError("the destination's name or id", field="destination")


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]}", field=unknown[0])


@bp.get("/trials/<int:trial_id>/submissions")
def list_submissions(trial_id: int) -> Response:
    trial = _trial(trial_id)
    found = submissions.list_submissions(db(), trial, state=request.args.get("state", ""))
    return jsonify({"items": [shape.submission(s) for s in found]})


@bp.post("/trials/<int:trial_id>/submissions")
def create_submission(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _trial_for(trial_id, Capability.MEDIA)
    body = json_body()
    _fields(body, {"destination", "exam_id", "timepoint_id", "subject_id", "disc_set_id"})
    given = [
        (scope, body[key])
        for scope, key in (
            ("exam", "exam_id"),
            ("timepoint", "timepoint_id"),
            ("subject", "subject_id"),
            ("disc_set", "disc_set_id"),
        )
        if body.get(key) not in (None, "")
    ]
    if len(given) != 1:
        raise ValidationError("give one of exam_id, timepoint_id, subject_id or disc_set_id")
    scope, value = given[0]
    created = submissions.create_submission(
        db(),
        actor(),
        trial,
        _destination(trial, body.get("destination")),
        scope=scope,
        value=str(value),
        today=today(),
    )
    commit()
    enqueue_submission(runtime(), created.id)
    db().refresh(created)
    location = url_for(".get_submission", trial_id=trial.id, submission_pk=created.id)
    return jsonify(shape.submission(created)), 202, {"Location": location}


@bp.get("/trials/<int:trial_id>/submissions/<int:submission_pk>")
def get_submission(trial_id: int, submission_pk: int) -> Response:
    found = submissions.get_submission(db(), _trial(trial_id), submission_pk)
    return jsonify(
        shape.submission(
            found,
            files=submissions.file_counts(db(), found),
            failed=submissions.failed_files(db(), found),
        )
    )


@bp.post("/trials/<int:trial_id>/submissions/<int:submission_pk>/cancel")
def cancel_submission(trial_id: int, submission_pk: int) -> Response:
    found = submissions.get_submission(db(), _trial(trial_id), submission_pk)
    submissions.cancel_submission(db(), actor(), found, today())
    commit()
    return jsonify(shape.submission(found))


@bp.post("/trials/<int:trial_id>/submissions/<int:submission_pk>/retry")
def retry_submission(trial_id: int, submission_pk: int) -> tuple[Response, int]:
    found = submissions.get_submission(db(), _trial(trial_id), submission_pk)
    submissions.retry_submission(db(), actor(), found, today())
    commit()
    enqueue_submission(runtime(), found.id)
    db().refresh(found)
    return jsonify(shape.submission(found)), 202


@bp.get("/trials/<int:trial_id>/submissions/<int:submission_pk>/receipt")
def get_submission_receipt(trial_id: int, submission_pk: int) -> Response:
    found = submissions.get_submission(db(), _trial(trial_id), submission_pk)
    return jsonify(submissions.receipt_of(db(), actor(), found, today()))


@bp.get("/trials/<int:trial_id>/rules")
def list_rules(trial_id: int) -> Response:
    return jsonify(
        {"items": [shape.rule(r) for r in automation.list_rules(db(), _trial(trial_id))]}
    )


@bp.post("/trials/<int:trial_id>/rules")
def create_rule(trial_id: int) -> tuple[Response, int]:
    trial = _trial_for(trial_id, Capability.TRIAL_ADMIN)
    body = json_body()
    _fields(body, {"destination", "timepoint_id", "mode", "daily_at"})
    timepoint = body.get("timepoint_id") or None
    tp_pk = None
    if timepoint is not None:
        if not isinstance(timepoint, str):
            raise ValidationError("a time point ID", field="timepoint_id")
        from trialship.services.timepoints import timepoint_by_code

        tp_pk = timepoint_by_code(db(), trial, timepoint).id
    mode, daily_at = body.get("mode", "on_ready"), body.get("daily_at", "")
    if not isinstance(mode, str) or not isinstance(daily_at, str):
        raise ValidationError("mode and daily_at are strings", field="mode")
    rule = automation.add_rule(
        db(),
        actor(),
        trial,
        _destination(trial, body.get("destination")),
        timepoint_pk=tp_pk,
        mode=mode,
        daily_at=daily_at,
        today=today(),
    )
    commit()
    return jsonify(shape.rule(rule)), 201


@bp.patch("/trials/<int:trial_id>/rules/<int:rule_pk>")
def update_rule(trial_id: int, rule_pk: int) -> Response:
    trial = _trial_for(trial_id, Capability.TRIAL_ADMIN)
    body = json_body()
    _fields(body, {"enabled"})
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise ValidationError("true or false", field="enabled")
    rule = automation.set_rule_enabled(
        db(), actor(), automation.get_rule(db(), trial, rule_pk), enabled, today()
    )
    commit()
    return jsonify(shape.rule(rule))


@bp.delete("/trials/<int:trial_id>/rules/<int:rule_pk>")
def delete_rule(trial_id: int, rule_pk: int) -> tuple[str, int]:
    trial = _trial(trial_id)
    automation.delete_rule(db(), actor(), automation.get_rule(db(), trial, rule_pk), today())
    commit()
    return "", 204


@bp.get("/jobs")
def list_jobs() -> Response:
    state = request.args.get("state", "")
    try:
        found = job_control.list_jobs(db(), actor(), state=state)
    except ValueError:
        raise ValidationError(f"unknown state {state!r}", field="state") from None
    return jsonify({"items": [serialize.job(j) for j in found]})


@bp.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int) -> Response:
    job = get_job(db(), actor(), job_id, today())
    job_control.cancel_job(db(), actor(), job, today())
    commit()
    return jsonify(serialize.job(job))


@bp.post("/jobs/<int:job_id>/retry")
def retry_job(job_id: int) -> tuple[Response, int]:
    job = get_job(db(), actor(), job_id, today())
    job_control.retry_job(db(), actor(), job, today())
    commit()
    enqueue_job(runtime(), job)
    db().refresh(job)
    return jsonify(serialize.job(job)), 202
