"""Discs of a trial: choose exams, see the plan, build (a job with progress), download the
image and label, preview the label, burn (a job with progress) or mark burned; rebuild or
delete a failed set."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from trialship.errors import NotFound, TrialshipError
from trialship.jobs.tasks import enqueue_disc_build, enqueue_disc_burn
from trialship.labels import list_templates
from trialship.registry.discs import Disc, DiscSet
from trialship.services import disc_burns, disc_sets, import_jobs
from trialship.services.authz import Capability
from trialship.services.timepoints import list_timepoints
from trialship.web.context import actor, commit, db, runtime, today
from trialship.web.views.trials import trial_context, writable_trial

bp = Blueprint("discs", __name__, url_prefix="/trials/<int:trial_id>/discs")
STATE_FILTERS = [
    (disc_sets.NOT_ON_DISC, "ready, on no disc yet"),
    ("deidentified", "de-identified"),
    ("", "any state"),
]


def _page(ctx: dict[str, Any], values: dict[str, Any], **extra: Any) -> str:
    trial = ctx["trial"]
    exams = disc_sets.candidate_exams(
        db(),
        trial,
        subject=values.get("subject_id", ""),
        timepoint=values.get("timepoint_id", ""),
        state=values.get("state", ""),
    )
    writable = not (ctx["locked"] and not actor().is_admin)
    page = {
        "exams": exams,
        "blocked": {e.id: disc_sets.blocked_reason(e) for e in exams},
        "chosen": {int(i) for i in values.get("exam_ids", []) if str(i).isdigit()},
        "timepoints": list_timepoints(db(), trial),
        "sets": disc_sets.list_disc_sets(db(), trial),
        "can_media": writable and Capability.MEDIA in ctx["caps"],
        "media_choices": list(disc_sets.MEDIA_CHOICES),
        "policy_choices": list(disc_sets.POLICY_CHOICES),
        "templates": list_templates(),
        "state_filters": STATE_FILTERS,
        "values": values,
        "plan": None,
        "error": None,
    }
    page.update(extra)
    return render_template("discs/index.html", **ctx, **page)


def _defaults(ctx: dict[str, Any]) -> dict[str, Any]:
    trial = ctx["trial"]
    return {
        "state": disc_sets.NOT_ON_DISC,
        "media": trial.disc_media,
        "policy": trial.disc_policy,
        "label_template": trial.label_template,
    }


def _form_values(ctx: dict[str, Any]) -> dict[str, Any]:
    values = {**_defaults(ctx), **request.form.to_dict()}
    values["exam_ids"] = request.form.getlist("exam_ids")
    return values


@bp.get("")
def index(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    values = {**_defaults(ctx), **request.args.to_dict()}
    return _page(ctx, values)


def _chosen(ctx: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    ids = [int(i) for i in values["exam_ids"] if str(i).isdigit()]
    if not ids:
        from trialship.errors import ValidationError

        raise ValidationError("tick at least one exam", field="exam_ids")
    return disc_sets.choose_exams(db(), ctx["trial"], exam_ids=ids)


@bp.post("/plan")
def plan(trial_id: int) -> str | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    values = _form_values(ctx)
    try:
        found = disc_sets.plan_disc_set(
            db(),
            actor(),
            ctx["trial"],
            _chosen(ctx, values),
            media=values["media"],
            policy=values["policy"],
            today=today(),
        )
    except TrialshipError as exc:
        return _page(ctx, values, error=str(exc)), exc.http_status
    return _page(ctx, values, plan=found)


@bp.post("")
def build(trial_id: int) -> Response | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    values = _form_values(ctx)
    try:
        disc_set = disc_sets.create_disc_set(
            db(),
            actor(),
            ctx["trial"],
            _chosen(ctx, values),
            media=values["media"],
            policy=values["policy"],
            label_template=values["label_template"],
            today=today(),
        )
    except TrialshipError as exc:
        db().rollback()
        return _page(ctx, values, error=str(exc)), exc.http_status
    commit()
    assert disc_set.job_id is not None
    enqueue_disc_build(runtime(), disc_set.job_id)
    return redirect(url_for("discs.job", trial_id=trial_id, job_id=disc_set.job_id))


@bp.get("/jobs/<int:job_id>")
def job(trial_id: int, job_id: int) -> str:
    ctx = trial_context(trial_id)
    found = import_jobs.get_job(db(), actor(), job_id, today())
    if found.trial_id != ctx["trial"].id or found.kind not in (disc_sets.KIND, disc_burns.KIND):
        raise NotFound(f"no disc job {job_id} in this trial")
    template = "discs/_job.html" if request.headers.get("HX-Request") else "discs/job.html"
    return render_template(template, **ctx, job=found)


def _disc(trial_id: int, disc_pk: int) -> Disc:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    return disc_sets.get_disc(db(), ctx["trial"], disc_pk)


@bp.get("/<int:disc_pk>/image.iso")
def image(trial_id: int, disc_pk: int) -> Response:
    path = disc_sets.disc_file(runtime().settings.data_dir, _disc(trial_id, disc_pk), "iso")
    return send_file(
        path, mimetype="application/x-iso9660-image", as_attachment=True, download_name=path.name
    )


@bp.get("/<int:disc_pk>/label.pdf")
def label(trial_id: int, disc_pk: int) -> Response:
    path = disc_sets.disc_file(runtime().settings.data_dir, _disc(trial_id, disc_pk), "label")
    return send_file(path, mimetype="application/pdf", as_attachment=True, download_name=path.name)


@bp.get("/<int:disc_pk>/label.png")
def label_png(trial_id: int, disc_pk: int) -> Response:
    png = disc_sets.label_preview(runtime().settings.data_dir, _disc(trial_id, disc_pk))
    return Response(png, mimetype="image/png")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


@bp.post("/<int:disc_pk>/burn")
def burn(trial_id: int, disc_pk: int) -> Response:
    """Queue the burn (one per drive at a time) and show its progress."""
    disc = _disc(trial_id, disc_pk)
    device = request.form.get("device", "")
    try:
        job = disc_burns.create_burn_job(
            db(), actor(), disc, device, data_dir=runtime().settings.data_dir, today=today()
        )
    except TrialshipError as exc:
        db().rollback()
        flash(f"Disc {disc_pk}: {exc}", "error")
        return redirect(url_for("discs.index", trial_id=trial_id))
    commit()
    enqueue_disc_burn(runtime(), job.id)
    return redirect(url_for("discs.job", trial_id=trial_id, job_id=job.id))


@bp.post("/<int:disc_pk>/mark-burned")
def mark_burned(trial_id: int, disc_pk: int) -> Response:
    disc = _disc(trial_id, disc_pk)
    try:
        disc_burns.mark_burned(db(), actor(), disc, today=today(), now=_now())
    except TrialshipError as exc:
        db().rollback()
        flash(f"Disc {disc_pk}: {exc}", "error")
        return redirect(url_for("discs.index", trial_id=trial_id))
    commit()
    flash(f"Disc {disc.fileset_id} recorded as burned.", "success")
    return redirect(url_for("discs.index", trial_id=trial_id))


def _set(trial_id: int, set_id: int) -> DiscSet:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    return disc_sets.get_disc_set(db(), ctx["trial"], set_id)


@bp.post("/sets/<int:set_id>/rebuild")
def rebuild_set(trial_id: int, set_id: int) -> Response:
    """Build a failed set again (same exams and options) and show the build's progress."""
    disc_set = _set(trial_id, set_id)
    try:
        job = disc_sets.rebuild_disc_set(db(), actor(), disc_set, today=today())
    except TrialshipError as exc:
        db().rollback()
        flash(f"Disc set {set_id}: {exc}", "error")
        return redirect(url_for("discs.index", trial_id=trial_id))
    commit()
    enqueue_disc_build(runtime(), job.id)
    return redirect(url_for("discs.job", trial_id=trial_id, job_id=job.id))


@bp.post("/sets/<int:set_id>/delete")
def delete_set(trial_id: int, set_id: int) -> Response:
    disc_set = _set(trial_id, set_id)
    try:
        disc_sets.delete_disc_set(
            db(), actor(), disc_set, data_dir=runtime().settings.data_dir, today=today()
        )
    except TrialshipError as exc:
        db().rollback()
        flash(f"Disc set {set_id}: {exc}", "error")
        return redirect(url_for("discs.index", trial_id=trial_id))
    commit()
    flash(f"Disc set {set_id} deleted.", "success")
    return redirect(url_for("discs.index", trial_id=trial_id))
