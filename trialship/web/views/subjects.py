"""Subjects: add, edit, and bulk import from CSV (upload, preview, then all or nothing)."""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.errors import TrialshipError
from trialship.registry.models import Subject, SubjectStatus
from trialship.services import subjects as subject_service
from trialship.services.subject_import import ImportResult, import_subjects
from trialship.web.context import actor, commit, db, runtime, today
from trialship.web.forms import form_values, save_or_rerender
from trialship.web.views.trials import writable_trial

bp = Blueprint("subjects", __name__, url_prefix="/trials/<int:trial_id>/subjects")
FIELDS = [name for name in subject_service.SUBJECT_FIELDS if name != "consent_distribution"]
STATUSES = [s.value for s in SubjectStatus]
UPLOAD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
UPLOAD_MAX_AGE = 24 * 3600
# The order the import page documents (the reader accepts the columns in any order).
EXAMPLE_COLUMNS = [
    "subject_id",
    "site_id",
    "reading_id",
    "status",
    "consent_distribution",
    "baseline_date",
    "identifiers",
]


def _form_context(ctx: dict[str, Any], subject: Subject | None) -> dict[str, Any]:
    return {**ctx, "subject": subject, "statuses": STATUSES, "sites": ctx["trial"].sites}


def _submitted() -> dict[str, Any]:
    values = form_values(FIELDS, checkboxes=["consent_distribution"])
    # An empty identifiers box means "leave them as they are" (they are never shown back).
    if not str(values.get("identifiers", "")).strip():
        values.pop("identifiers", None)
    return values


@bp.route("/new", methods=["GET", "POST"])
def new(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = _form_context(writable_trial(trial_id), None)
    if request.method == "GET":
        return render_template("subjects/form.html", **ctx, values={}, error=None)
    subject, page = save_or_rerender(
        lambda: subject_service.add_subject(
            db(), actor(), runtime().vault, ctx["trial"], _submitted(), today()
        ),
        "subjects/form.html",
        **ctx,
    )
    if page:
        return page
    flash(f"Subject {subject.subject_id} added.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="subjects"))


@bp.route("/<int:subject_pk>/edit", methods=["GET", "POST"])
def edit(trial_id: int, subject_pk: int) -> Response | str | tuple[str, int]:
    trial_ctx = writable_trial(trial_id)
    subject = subject_service.get_subject(db(), trial_ctx["trial"], subject_pk)
    ctx = _form_context(trial_ctx, subject)
    if request.method == "GET":
        values = {
            "subject_id": subject.subject_id,
            "reading_id": subject.reading_id,
            "site_id": subject.site.site_id if subject.site else "",
            "status": subject.status.value,
            "consent_distribution": subject.consent_distribution,
            "baseline_date": subject.baseline_date.isoformat() if subject.baseline_date else "",
        }
        return render_template("subjects/form.html", **ctx, values=values, error=None)
    _, page = save_or_rerender(
        lambda: subject_service.update_subject(
            db(), actor(), runtime().vault, subject, _submitted(), today()
        ),
        "subjects/form.html",
        **ctx,
    )
    if page:
        return page
    flash(f"Subject {subject.subject_id} saved.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="subjects"))


# --- CSV import -------------------------------------------------------------------------------


def _uploads() -> Path:
    folder = runtime().settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload_path(trial_id: int, token: str) -> Path:
    # The trial and the user are part of the name: a token only works where it was issued.
    return _uploads() / f"subjects-{trial_id}-{actor().user_id}-{token}.csv"


def _store_upload(trial_id: int, data: bytes) -> str:
    cutoff = time.time() - UPLOAD_MAX_AGE
    for old in _uploads().glob("subjects-*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    _upload_path(trial_id, token).write_bytes(data)
    return token


def _run_import(ctx: dict[str, Any], data: bytes, *, commit_rows: bool) -> ImportResult:
    settings = runtime().settings
    return import_subjects(
        db(),
        actor(),
        runtime().vault,
        ctx["trial"],
        data,
        today=today(),
        commit=commit_rows,
        max_bytes=settings.csv_max_bytes,
        max_rows=settings.csv_max_rows,
    )


def _import_page(ctx: dict[str, Any], **extra: Any) -> str:
    settings = runtime().settings
    return render_template(
        "subjects/import.html",
        **ctx,
        max_rows=settings.csv_max_rows,
        max_bytes=settings.csv_max_bytes,
        **{"error": None, "error_field": None, **extra},
    )


@bp.route("/import", methods=["GET", "POST"])
def import_upload(trial_id: int) -> str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    if request.method == "GET":
        return _import_page(ctx)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(ctx, error="file: choose a CSV file to upload", error_field="file"), 422
    data = upload.read()
    try:
        result = _run_import(ctx, data, commit_rows=False)
    except TrialshipError as exc:
        db().rollback()
        return _import_page(ctx, error=str(exc), error_field=exc.field), exc.http_status
    db().rollback()  # a preview saves nothing
    token = _store_upload(trial_id, data) if result.ok else None
    return render_template(
        "subjects/import_preview.html",
        **ctx,
        result=result,
        token=token,
        filename=upload.filename,
        identifier_count=_identifier_count,
    )


@bp.post("/import/commit")
def import_commit(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    token = request.form.get("token", "")
    path = _upload_path(trial_id, token) if UPLOAD_TOKEN.match(token) else None
    if path is None or not path.is_file():
        message = "file: the uploaded file has expired or was imported already; upload it again"
        return _import_page(ctx, error=message, error_field="file"), 410
    try:
        result = _run_import(ctx, path.read_bytes(), commit_rows=True)
    except TrialshipError as exc:
        db().rollback()
        return _import_page(ctx, error=str(exc), error_field=exc.field), exc.http_status
    if not result.committed:
        # Something changed since the preview (e.g. a subject added meanwhile): nothing saved.
        db().rollback()
        page = render_template(
            "subjects/import_preview.html",
            **ctx,
            result=result,
            token=None,
            filename="",
            identifier_count=_identifier_count,
        )
        return page, 409
    commit()
    path.unlink(missing_ok=True)
    flash(f"{len(result.rows)} subjects imported.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="subjects"))


@bp.get("/import/example.csv")
def import_example(trial_id: int) -> Response:
    ctx = writable_trial(trial_id)
    sites = ctx["trial"].sites
    site = sites[0].site_id if sites else ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXAMPLE_COLUMNS)
    examples = {
        "subject_id": ["S-0001", "S-0002"],
        "site_id": [site, site],
        "reading_id": ["R-0001", ""],
        "status": ["enrolled", "screening"],
        "consent_distribution": ["yes", "no"],
        "baseline_date": [today().isoformat(), ""],
        "identifiers": ["MRN0001|HOSPITAL-A", "MRN0002|HOSPITAL-A; 55-0002|HOSPITAL-B"],
    }
    for i in range(2):
        writer.writerow([examples[column][i] for column in EXAMPLE_COLUMNS])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="subjects-example.csv"'},
    )


def _identifier_count(text: str | None) -> int:
    """How many identifiers a CSV cell lists: the preview never shows the identifiers."""
    return len([part for part in (text or "").split(";") if part.strip()])
