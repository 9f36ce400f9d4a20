"""Exams of a trial: import (upload, queued job, progress), list, one exam with its series,
time point confirmation, pixel review, quarantine, receipts, and the key (trial admins only)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from trialship.errors import TrialshipError, ValidationError
from trialship.jobs.tasks import enqueue_import
from trialship.registry.models import Exam, Job, TimePoint
from trialship.services import exam_reports, import_jobs
from trialship.services import exams as exam_service
from trialship.services.authz import Capability
from trialship.services.submissions import deliveries_by_exam
from trialship.services.timepoints import get_timepoint, list_timepoints
from trialship.signing import load_or_create_signing_key
from trialship.web.context import actor, commit, db, json_attachment, runtime, today
from trialship.web.views.trials import trial_context, writable_trial

bp = Blueprint("exams", __name__, url_prefix="/trials/<int:trial_id>")
# Uploads of exams are far larger than the app's default request limit (CSV files).
UPLOAD_ENDPOINTS = frozenset({"exams.import_upload", "api.create_import"})
UPLOAD_MAX_BYTES = 64 << 30
UPLOAD_MAX_PARTS = 100_000


def save_uploads(files: list[FileStorage]) -> str:
    """Store uploaded files under numbered names; returns the upload token."""
    token, folder = import_jobs.new_upload(runtime().settings.data_dir)
    for number, upload in enumerate(files, start=1):
        upload.save(import_jobs.upload_file_path(folder, number))
    return token


def queue_import(trial_ctx: dict[str, object], token: str, subject: str, timepoint: str) -> Job:
    """Record the job, commit, enqueue; the upload is discarded when the job is refused."""
    try:
        job = import_jobs.create_import_job(
            db(),
            actor(),
            trial_ctx["trial"],  # type: ignore[arg-type]
            token,
            data_dir=runtime().settings.data_dir,
            today=today(),
            subject_id=subject,
            timepoint_id=timepoint,
        )
    except TrialshipError:
        db().rollback()
        import_jobs.discard_upload(runtime().settings.data_dir, token)
        raise
    commit()
    enqueue_import(runtime(), job.id)
    db().refresh(job)
    return job


def confirm(exam: Exam, timepoint: TimePoint) -> None:
    """Confirm the exam's time point (re-de-identifying its files if it changed), committed."""
    data_dir = runtime().settings.data_dir
    exam_service.confirm_timepoint(
        db(),
        actor(),
        runtime().vault,
        exam,
        timepoint,
        today=today(),
        data_dir=data_dir,
        signing_key=load_or_create_signing_key(data_dir),
        now=_now(),
    )
    commit()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@bp.route("/imports/new", methods=["GET", "POST"])
def import_upload(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    subjects = ctx["trial"].subjects
    page = {"subjects": subjects, "timepoints": list_timepoints(db(), ctx["trial"])}
    if request.method == "GET":
        return render_template("exams/import.html", **ctx, **page, error=None, values={})
    files = [f for f in request.files.getlist("files") if f and f.filename]
    values = request.form.to_dict()
    if not files:
        message = "files: choose one or more DICOM files or a zip file"
        return render_template(
            "exams/import.html", **ctx, **page, error=message, values=values
        ), 422
    token = save_uploads(files)
    try:
        job = queue_import(ctx, token, values.get("subject_id", ""), values.get("timepoint_id", ""))
    except TrialshipError as exc:
        return render_template(
            "exams/import.html", **ctx, **page, error=str(exc), values=values
        ), exc.http_status
    return redirect(url_for("exams.job", trial_id=trial_id, job_id=job.id))


@bp.get("/jobs/<int:job_id>")
def job(trial_id: int, job_id: int) -> str:
    ctx = trial_context(trial_id)
    found = import_jobs.get_job(db(), actor(), job_id, today())
    if found.trial_id != ctx["trial"].id:
        from trialship.errors import NotFound

        raise NotFound(f"no job {job_id} in this trial")
    template = "exams/_job.html" if request.headers.get("HX-Request") else "exams/job.html"
    return render_template(template, **ctx, job=found)


@bp.get("/exams")
def index(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    trial = ctx["trial"]
    return render_template(
        "exams/index.html",
        **ctx,
        exams=exam_service.list_exams(db(), trial),
        timepoints=list_timepoints(db(), trial),
        quarantined=len(exam_service.list_quarantine(db(), trial)),
        deliveries=deliveries_by_exam(db(), trial),
    )


@bp.get("/exams/<int:exam_pk>")
def show(trial_id: int, exam_pk: int) -> str:
    ctx = trial_context(trial_id)
    trial = ctx["trial"]
    exam = exam_service.get_exam(db(), trial, exam_pk)
    return render_template(
        "exams/show.html",
        **ctx,
        exam=exam,
        series=exam_service.exam_series(db(), exam),
        deliveries=deliveries_by_exam(db(), trial).get(exam.id, []),
    )


@bp.post("/exams/<int:exam_pk>/timepoint")
def confirm_timepoint(trial_id: int, exam_pk: int) -> Response:
    ctx = writable_trial(trial_id)
    exam = exam_service.get_exam(db(), ctx["trial"], exam_pk)
    try:
        pk = int(request.form.get("timepoint_pk", ""))
    except ValueError:
        raise ValidationError("choose a time point", field="timepoint_pk") from None
    confirm(exam, get_timepoint(db(), ctx["trial"], pk))
    flash(f"Exam {exam.id}: time point {exam.timepoint.timepoint_id} confirmed.", "success")  # type: ignore[union-attr]
    return redirect(url_for("exams.index", trial_id=trial_id))


@bp.post("/exams/<int:exam_pk>/pixel-review")
def pixels_reviewed(trial_id: int, exam_pk: int) -> Response:
    ctx = writable_trial(trial_id)
    exam = exam_service.get_exam(db(), ctx["trial"], exam_pk)
    exam_service.mark_pixels_reviewed(db(), actor(), exam, today())
    commit()
    flash(f"Exam {exam.id}: pixels marked as reviewed.", "success")
    return redirect(url_for("exams.index", trial_id=trial_id))


@bp.get("/exams/<int:exam_pk>/receipt.json")
def receipt(trial_id: int, exam_pk: int) -> Response:
    ctx = trial_context(trial_id)
    exam = exam_service.get_exam(db(), ctx["trial"], exam_pk)
    document = exam_service.receipt(db(), actor(), exam, today())
    return json_attachment(document, f"exam-{exam.id}-receipt.json")


@bp.get("/exams/<int:exam_pk>/report.json")
def attribute_report(trial_id: int, exam_pk: int) -> Response:
    ctx = trial_context(trial_id)
    exam = exam_service.get_exam(db(), ctx["trial"], exam_pk)
    document = exam_reports.attribute_reports(db(), actor(), exam, today())
    return json_attachment(document, f"exam-{exam.id}-report.json")


@bp.get("/quarantine")
def quarantine(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    return render_template(
        "exams/quarantine.html",
        **ctx,
        files=exam_service.list_quarantine(db(), ctx["trial"]),
        content_sha256=exam_service.content_sha256,
        position=exam_service.position,
    )


@bp.get("/key")
def key(trial_id: int) -> str:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    rows = exam_service.read_key(db(), actor(), runtime().vault, ctx["trial"], today())
    commit()  # the audit event of this view
    return render_template("exams/key.html", **ctx, rows=rows)


@bp.get("/key.csv")
def key_csv(trial_id: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    rows = exam_service.read_key(db(), actor(), runtime().vault, ctx["trial"], today(), export=True)
    commit()
    name = f"{ctx['trial'].protocol_id}-key.csv"
    return Response(
        exam_service.key_csv(rows),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
