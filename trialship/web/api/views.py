"""Routes of the JSON API. Every request carries `Authorization: Bearer <token>`.

Views parse the body, call the same services as the web UI, commit, and serialize; services
validate, check roles and audit. Errors become `{"error": {"code", "message", "field"?}}`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Response

from trialship import vr
from trialship.errors import Forbidden, Unauthorized, ValidationError
from trialship.registry.models import Trial
from trialship.services import (
    audit,
    destinations,
    exam_reports,
    exams,
    import_jobs,
    subject_import,
    subjects,
    timepoints,
    trial_profile,
    trials,
)
from trialship.services.authz import Capability, require
from trialship.services.completeness import completeness as completeness_matrix
from trialship.services.fields import validate
from trialship.services.users import user_for_token
from trialship.web.api import serialize
from trialship.web.api.spec import document
from trialship.web.context import actor, commit, db, runtime, today
from trialship.web.errors import error_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")

CSV_TYPES = {"", "text/csv", "text/plain", "application/octet-stream"}
TOML_TYPE = "application/toml; charset=utf-8"
CHALLENGE = 'Bearer realm="trialship"'


# -- authentication and errors ------------------------------------------------------------


def _unauthorized(message: str, *, invalid_token: bool) -> Response:
    response = error_response(401, Unauthorized.code, message)
    challenge = CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    response.headers["WWW-Authenticate"] = challenge
    return response


@bp.before_request
def _authenticate() -> Response | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or len(token.split()) != 1 or len(token) > 512:
        return _unauthorized(
            "send an API token as 'Authorization: Bearer <token>'", invalid_token=False
        )
    try:
        user = user_for_token(db(), token)
    except Unauthorized as exc:
        db().rollback()
        return _unauthorized(exc.message, invalid_token=True)
    commit()  # the token's last_used_at
    g.api_user = user
    return None


@bp.errorhandler(IntegrityError)
def _integrity_error(_exc: IntegrityError) -> Response:
    # Services check for duplicates first; this is the race of two requests creating the same.
    db().rollback()
    return error_response(409, "conflict", "the object exists already (a concurrent change)")


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unmatched(rest: str) -> Response:
    """Any other URL under /api/v1: a JSON 404 or 405 (never the login page)."""
    rules = [
        rule.empty()
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.unmatched"
    ]
    adapter = Map(rules, merge_slashes=False).bind("localhost")
    try:
        adapter.match(request.path, request.method)
    except MethodNotAllowed as exc:
        allowed = sorted(exc.valid_methods or [])
        response = error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use {', '.join(allowed)}",
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    except HTTPException:
        pass  # NotFound, or a slash redirect this API does not offer
    return error_response(404, "not_found", NotFound.description)


# -- request helpers ------------------------------------------------------------------------


def json_body() -> dict[str, Any]:
    """The request body as a JSON object: 400 unless it is one."""
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _trial(trial_id: int) -> Trial:
    return trials.get_trial(db(), actor(), trial_id, today())


def _ok(payload: object) -> Response:
    return jsonify(payload)


def _created(payload: dict[str, Any], location: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify(payload), 201, {"Location": location}


# -- the caller -----------------------------------------------------------------------------


@bp.get("/me")
def me() -> Response:
    return _ok(serialize.me(g.api_user))


@bp.get("/openapi.json")
def openapi() -> Response:
    return _ok(document())


# -- trials ---------------------------------------------------------------------------------


@bp.get("/trials")
def list_trials() -> Response:
    return _ok({"items": [serialize.trial(t, today()) for t in trials.list_trials(db(), actor())]})


@bp.post("/trials")
def create_trial() -> tuple[Response, int, dict[str, str]]:
    trial = trials.create_trial(db(), actor(), json_body())
    commit()
    return _created(serialize.trial(trial, today()), url_for(".get_trial", trial_id=trial.id))


@bp.get("/trials/<int:trial_id>")
def get_trial(trial_id: int) -> Response:
    return _ok(serialize.trial(_trial(trial_id), today()))


@bp.patch("/trials/<int:trial_id>")
def update_trial(trial_id: int) -> Response:
    trial = _trial(trial_id)
    trials.update_trial(db(), actor(), trial, json_body(), today())
    commit()
    return _ok(serialize.trial(trial, today()))


@bp.get("/trials/<int:trial_id>/profile")
def get_trial_profile(trial_id: int) -> Response:
    """The whole profile as TOML for `trialship deid --profile`, without the secret."""
    trial = _trial(trial_id)
    text = trial_profile.export_profile(
        db(), actor(), runtime().vault, trial, include_secret=False, today=today()
    )
    return Response(text, content_type=TOML_TYPE)


# -- sites ----------------------------------------------------------------------------------


@bp.get("/trials/<int:trial_id>/sites")
def list_sites(trial_id: int) -> Response:
    return _ok({"items": [serialize.site(s) for s in _trial(trial_id).sites]})


@bp.post("/trials/<int:trial_id>/sites")
def create_site(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _trial(trial_id)
    site = trials.add_site(db(), actor(), trial, json_body(), today())
    commit()
    return _created(serialize.site(site), url_for(".get_site", trial_id=trial.id, site_pk=site.id))


@bp.get("/trials/<int:trial_id>/sites/<int:site_pk>")
def get_site(trial_id: int, site_pk: int) -> Response:
    return _ok(serialize.site(trials.get_site(db(), _trial(trial_id), site_pk)))


@bp.patch("/trials/<int:trial_id>/sites/<int:site_pk>")
def update_site(trial_id: int, site_pk: int) -> Response:
    site = trials.get_site(db(), _trial(trial_id), site_pk)
    trials.update_site(db(), actor(), site, json_body(), today())
    commit()
    return _ok(serialize.site(site))


# -- subjects -------------------------------------------------------------------------------


@bp.get("/trials/<int:trial_id>/subjects")
def list_subjects(trial_id: int) -> Response:
    trial = _trial(trial_id)
    return _ok({"items": [serialize.subject(s) for s in subjects.list_subjects(db(), trial)]})


@bp.post("/trials/<int:trial_id>/subjects")
def create_subject(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _trial(trial_id)
    data = json_body()
    subject = subjects.add_subject(db(), actor(), runtime().vault, trial, data, today())
    commit()
    return _created(
        serialize.subject(subject),
        url_for(".get_subject", trial_id=trial.id, subject_pk=subject.id),
    )


@bp.get("/trials/<int:trial_id>/subjects/<int:subject_pk>")
def get_subject(trial_id: int, subject_pk: int) -> Response:
    return _ok(serialize.subject(subjects.get_subject(db(), _trial(trial_id), subject_pk)))


@bp.patch("/trials/<int:trial_id>/subjects/<int:subject_pk>")
def update_subject(trial_id: int, subject_pk: int) -> Response:
    subject = subjects.get_subject(db(), _trial(trial_id), subject_pk)
    data = json_body()
    subjects.update_subject(db(), actor(), runtime().vault, subject, data, today())
    commit()
    return _ok(serialize.subject(subject))


@bp.post("/trials/<int:trial_id>/subjects/import")
def import_subjects(trial_id: int) -> Response | tuple[Response, int]:
    """A CSV file as the body; `?commit=true` saves all rows, or none if any row fails."""
    trial = _trial(trial_id)
    # The role first: a caller who may not import learns nothing about the body it sent.
    require(db(), actor(), trial, Capability.REGISTRY, today())
    if request.mimetype not in CSV_TYPES:
        return error_response(
            415, "unsupported_media_type", "send the CSV file as the body with type text/csv"
        )
    save = vr.boolean("commit", request.args.get("commit", "false"))
    settings = runtime().settings
    result = subject_import.import_subjects(
        db(),
        actor(),
        runtime().vault,
        trial,
        request.get_data(cache=False),
        today=today(),
        commit=save,
        max_bytes=settings.csv_max_bytes,
        max_rows=settings.csv_max_rows,
    )
    body = serialize.import_result(result)
    if save and not result.committed:
        db().rollback()
        failed = len(result.error_rows)
        body["error"] = {
            "code": ValidationError.code,
            "message": f"{failed} row(s) have errors: nothing was saved",
            "field": "file",
        }
        return jsonify(body), 422
    if result.committed:
        commit()
        return jsonify(body), 201
    db().rollback()
    return jsonify(body), 200


# -- time points ----------------------------------------------------------------------------


@bp.get("/trials/<int:trial_id>/timepoints")
def list_timepoints(trial_id: int) -> Response:
    trial = _trial(trial_id)
    return _ok({"items": [serialize.timepoint(t) for t in timepoints.list_timepoints(db(), trial)]})


@bp.post("/trials/<int:trial_id>/timepoints")
def create_timepoint(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _trial(trial_id)
    timepoint = timepoints.add_timepoint(db(), actor(), trial, json_body(), today())
    commit()
    return _created(
        serialize.timepoint(timepoint),
        url_for(".get_timepoint", trial_id=trial.id, timepoint_pk=timepoint.id),
    )


@bp.get("/trials/<int:trial_id>/timepoints/<int:timepoint_pk>")
def get_timepoint(trial_id: int, timepoint_pk: int) -> Response:
    return _ok(serialize.timepoint(timepoints.get_timepoint(db(), _trial(trial_id), timepoint_pk)))


@bp.patch("/trials/<int:trial_id>/timepoints/<int:timepoint_pk>")
def update_timepoint(trial_id: int, timepoint_pk: int) -> Response:
    timepoint = timepoints.get_timepoint(db(), _trial(trial_id), timepoint_pk)
    timepoints.update_timepoint(db(), actor(), timepoint, json_body(), today())
    commit()
    return _ok(serialize.timepoint(timepoint))


# -- completeness ---------------------------------------------------------------------------


@bp.get("/trials/<int:trial_id>/completeness")
def completeness(trial_id: int) -> Response:
    trial = _trial(trial_id)
    matrix = completeness_matrix(db(), trial, today())
    return _ok(serialize.completeness(matrix, trial))


# -- exams and imports ----------------------------------------------------------------------

IMPORT_TYPES = {"application/zip", "application/dicom", "application/octet-stream"}


def _save_body() -> str:
    """A raw body (a zip or one DICOM file) streamed into a new upload; returns its token."""
    token, folder = import_jobs.new_upload(runtime().settings.data_dir)
    with import_jobs.upload_file_path(folder, 1).open("wb") as out:
        for chunk in iter(lambda: request.stream.read(1 << 20), b""):
            out.write(chunk)
    return token


@bp.post("/trials/<int:trial_id>/imports")
def create_import(trial_id: int) -> tuple[Response, int, dict[str, str]] | Response:
    """Multipart `files` (many files or a zip), or the body itself (a zip or a DICOM file)."""
    from trialship.web.views.exams import queue_import, save_uploads

    trial = _trial(trial_id)
    # The role first: a caller who may not import learns nothing about the body it sent.
    require(db(), actor(), trial, Capability.REGISTRY, today())
    if request.mimetype == "multipart/form-data":
        files = [f for f in request.files.getlist("files") if f and f.filename]
        if not files:
            raise ValidationError("send one or more files in the 'files' field", field="files")
        token = save_uploads(files)
    elif request.mimetype in IMPORT_TYPES:
        token = _save_body()
    else:
        return error_response(
            415,
            "unsupported_media_type",
            "send multipart/form-data with 'files', or the body as application/zip or "
            "application/dicom",
        )
    job = queue_import(
        {"trial": trial},
        token,
        request.args.get("subject_id", ""),
        request.args.get("timepoint_id", ""),
    )
    return jsonify(serialize.job(job)), 202, {"Location": url_for(".get_job", job_id=job.id)}


@bp.get("/jobs/<int:job_id>")
def get_job(job_id: int) -> Response:
    return _ok(serialize.job(import_jobs.get_job(db(), actor(), job_id, today())))


@bp.get("/trials/<int:trial_id>/exams")
def list_exams(trial_id: int) -> Response:
    trial = _trial(trial_id)
    return _ok({"items": [serialize.exam(e) for e in exams.list_exams(db(), trial)]})


@bp.get("/trials/<int:trial_id>/exams/<int:exam_pk>")
def get_exam(trial_id: int, exam_pk: int) -> Response:
    exam = exams.get_exam(db(), _trial(trial_id), exam_pk)
    return _ok(serialize.exam(exam, series=exams.exam_series(db(), exam)))


@bp.get("/trials/<int:trial_id>/exams/<int:exam_pk>/receipt")
def get_exam_receipt(trial_id: int, exam_pk: int) -> Response:
    exam = exams.get_exam(db(), _trial(trial_id), exam_pk)
    return _ok(exams.receipt(db(), actor(), exam, today()))


@bp.get("/trials/<int:trial_id>/exams/<int:exam_pk>/report")
def get_exam_report(trial_id: int, exam_pk: int) -> Response:
    exam = exams.get_exam(db(), _trial(trial_id), exam_pk)
    return _ok(exam_reports.attribute_reports(db(), actor(), exam, today()))


@bp.post("/trials/<int:trial_id>/exams/<int:exam_pk>/timepoint")
def confirm_exam_timepoint(trial_id: int, exam_pk: int) -> Response:
    """Set and confirm the exam's time point by its ID (`{"timepoint_id": "W2"}`)."""
    from trialship.web.views.exams import confirm

    trial = _trial(trial_id)
    exam = exams.get_exam(db(), trial, exam_pk)
    # The role first: a caller who may not confirm learns nothing about the body it sent.
    require(db(), actor(), trial, Capability.REGISTRY, today())
    code = validate(exams.CONFIRMATION_FIELDS, json_body())["timepoint_id"]
    confirm(exam, timepoints.timepoint_by_code(db(), trial, code))
    return _ok(serialize.exam(exam))


@bp.post("/trials/<int:trial_id>/exams/<int:exam_pk>/pixel-review")
def review_exam_pixels(trial_id: int, exam_pk: int) -> Response:
    exam = exams.get_exam(db(), _trial(trial_id), exam_pk)
    exams.mark_pixels_reviewed(db(), actor(), exam, today())
    commit()
    return _ok(serialize.exam(exam))


@bp.get("/trials/<int:trial_id>/quarantine")
def list_quarantine(trial_id: int) -> Response:
    files = exams.list_quarantine(db(), _trial(trial_id))
    return _ok({"items": [serialize.quarantined_file(f) for f in files]})


@bp.get("/trials/<int:trial_id>/key")
def get_key(trial_id: int) -> Response:
    """The re-identification key: trial admins only, each read audited; CSV with ?format=csv."""
    trial = _trial(trial_id)
    # The role, then the format: a wrong one reads nothing (and audits nothing).
    require(db(), actor(), trial, Capability.TRIAL_ADMIN, today())
    fmt = vr.choice("format", request.args.get("format"), exams.KEY_FORMATS, default="json")
    as_csv = fmt == "csv"
    rows = exams.read_key(db(), actor(), runtime().vault, trial, today(), export=as_csv)
    commit()  # the audit event of this read
    if as_csv:
        return Response(
            exams.key_csv(rows), mimetype="text/csv", headers={"Cache-Control": "no-store"}
        )
    response = _ok({"items": [row.as_dict() for row in rows]})
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the audit trail -----------------------------------------------------------------------


def _query_int(name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or not value.strip():
        return None
    return vr.integer(name, value, minimum=minimum, maximum=maximum)


@bp.get("/audit")
def list_audit() -> Response:
    """Newest first, as the web's audit page: admins every event, others their trials'."""
    from trialship.web.views.audit import visible_filter

    user_id = _query_int("user_id", minimum=1)
    if user_id is not None and not actor().is_admin:
        raise Forbidden("only administrators filter the audit trail by user", field="user_id")
    flt, _ = visible_filter(
        _query_int("trial_id", minimum=1),
        user_id,
        request.args.get("action", ""),
        limit=_query_int("limit", minimum=1, maximum=audit.MAX_PAGE) or audit.AuditFilter.limit,
        offset=_query_int("offset", minimum=0) or 0,
    )
    events, total = audit.list_events(db(), flt)
    return _ok({"items": [serialize.audit_event(e) for e in events], "total": total})


# -- destinations ---------------------------------------------------------------------------


@bp.get("/trials/<int:trial_id>/destinations")
def list_destinations(trial_id: int) -> Response:
    trial = _trial(trial_id)
    items = destinations.list_destinations(db(), trial)
    return _ok({"items": [serialize.destination(d) for d in items]})


@bp.post("/trials/<int:trial_id>/destinations")
def create_destination(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _trial(trial_id)
    require(db(), actor(), trial, Capability.TRIAL_ADMIN, today())
    dest = destinations.add_destination(db(), actor(), runtime().vault, trial, json_body(), today())
    commit()
    return _created(
        serialize.destination(dest),
        url_for(".get_destination", trial_id=trial.id, destination_pk=dest.id),
    )


@bp.get("/trials/<int:trial_id>/destinations/<int:destination_pk>")
def get_destination(trial_id: int, destination_pk: int) -> Response:
    dest = destinations.get_destination(db(), _trial(trial_id), destination_pk)
    return _ok(serialize.destination(dest))


@bp.patch("/trials/<int:trial_id>/destinations/<int:destination_pk>")
def update_destination(trial_id: int, destination_pk: int) -> Response:
    dest = destinations.get_destination(db(), _trial(trial_id), destination_pk)
    require(db(), actor(), dest.trial, Capability.TRIAL_ADMIN, today())
    destinations.update_destination(db(), actor(), runtime().vault, dest, json_body(), today())
    commit()
    return _ok(serialize.destination(dest))


@bp.post("/trials/<int:trial_id>/destinations/<int:destination_pk>/test")
def test_destination(trial_id: int, destination_pk: int) -> Response:
    dest = destinations.get_destination(db(), _trial(trial_id), destination_pk)
    result = destinations.check_connection(db(), actor(), runtime().vault, dest, today())
    commit()
    return _ok(serialize.probe_result(result, dest))


@bp.post("/trials/<int:trial_id>/destinations/<int:destination_pk>/pin")
def pin_destination(trial_id: int, destination_pk: int) -> Response:
    dest = destinations.get_destination(db(), _trial(trial_id), destination_pk)
    require(db(), actor(), dest.trial, Capability.TRIAL_ADMIN, today())
    destinations.pin_host_key(db(), actor(), dest, json_body().get("fingerprint"), today())
    commit()
    return _ok(serialize.destination(dest))
