"""Submissions of a trial: the dashboard (what went where and when, what failed and why, what
is waiting), submit, live progress, cancel, retry, the receipt; automation rules."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.errors import TrialshipError, ValidationError
from trialship.jobs.tasks import enqueue_submission
from trialship.registry.submissions import SubmissionState
from trialship.services import automation, disc_sets, submissions
from trialship.services.authz import Capability
from trialship.services.destinations import get_destination, list_destinations
from trialship.services.timepoints import list_timepoints
from trialship.web.context import actor, commit, db, json_attachment, runtime, today
from trialship.web.views.trials import trial_context, writable_trial

bp = Blueprint("submissions", __name__, url_prefix="/trials/<int:trial_id>/submissions")


def _int(name: str, value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ValidationError("choose one", field=name) from None


def _page(ctx: dict[str, Any], **extra: Any) -> str:
    trial = ctx["trial"]
    writable = not (ctx["locked"] and not actor().is_admin)
    rows = submissions.list_submissions(db(), trial, state=request.args.get("state", ""))
    page: dict[str, Any] = {
        "submissions": rows,
        "progress": {s.id: submissions.progress_of(s) for s in rows},
        "states": [s.value for s in SubmissionState],
        "destinations": list_destinations(db(), trial),
        "timepoints": list_timepoints(db(), trial),
        "rules": automation.list_rules(db(), trial),
        "exams": disc_sets.candidate_exams(db(), trial),
        "blocked": {},
        "disc_sets": disc_sets.list_disc_sets(db(), trial),
        "can_submit": writable and Capability.MEDIA in ctx["caps"],
        "values": request.form.to_dict(),
        "error": None,
    }
    page["blocked"] = {e.id: submissions.exam_blocked(e) for e in page["exams"]}
    sent = submissions.deliveries_by_exam(db(), trial)
    # What is waiting: exams ready to go that no submission has taken (or all failed).
    page["waiting"] = [
        e
        for e in page["exams"]
        if page["blocked"][e.id] is None
        and not any(state in ("queued", "running", "done") for _, state in sent.get(e.id, []))
    ]
    page.update(extra)
    return render_template("submissions/index.html", **ctx, **page)


@bp.get("")
def index(trial_id: int) -> str:
    return _page(trial_context(trial_id))


@bp.post("")
def create(trial_id: int) -> Response | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    form = request.form
    try:
        scope = form.get("scope", "")
        dest = get_destination(db(), ctx["trial"], _int("destination", form.get("destination")))
        created = submissions.create_submission(
            db(),
            actor(),
            ctx["trial"],
            dest,
            scope=scope,
            value=form.get(scope, "") if scope in submissions.SCOPES else "",
            today=today(),
        )
    except TrialshipError as exc:
        db().rollback()
        return _page(ctx, error=str(exc)), exc.http_status
    commit()
    enqueue_submission(runtime(), created.id)
    return redirect(url_for("submissions.show", trial_id=trial_id, submission_pk=created.id))


@bp.get("/<int:submission_pk>")
def show(trial_id: int, submission_pk: int) -> str:
    ctx = trial_context(trial_id)
    found = submissions.get_submission(db(), ctx["trial"], submission_pk)
    writable = not (ctx["locked"] and not actor().is_admin)
    template = (
        "submissions/_status.html" if request.headers.get("HX-Request") else "submissions/show.html"
    )
    return render_template(
        template,
        **ctx,
        submission=found,
        progress=submissions.progress_of(found),
        counts=submissions.file_counts(db(), found),
        failed=submissions.failed_files(db(), found),
        can_submit=writable and Capability.MEDIA in ctx["caps"],
    )


@bp.post("/<int:submission_pk>/cancel")
def cancel(trial_id: int, submission_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    found = submissions.get_submission(db(), ctx["trial"], submission_pk)
    try:
        submissions.cancel_submission(db(), actor(), found, today())
    except TrialshipError as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        commit()
        flash(f"Submission {found.id}: cancel requested.", "success")
    return redirect(url_for("submissions.show", trial_id=trial_id, submission_pk=submission_pk))


@bp.post("/<int:submission_pk>/retry")
def retry(trial_id: int, submission_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.MEDIA)
    found = submissions.get_submission(db(), ctx["trial"], submission_pk)
    try:
        submissions.retry_submission(db(), actor(), found, today())
    except TrialshipError as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        commit()
        enqueue_submission(runtime(), found.id)
        flash(f"Submission {found.id} queued again: confirmed files are not sent twice.", "success")
    return redirect(url_for("submissions.show", trial_id=trial_id, submission_pk=submission_pk))


@bp.get("/<int:submission_pk>/receipt.json")
def receipt(trial_id: int, submission_pk: int) -> Response:
    ctx = trial_context(trial_id)
    found = submissions.get_submission(db(), ctx["trial"], submission_pk)
    document = submissions.receipt_of(db(), actor(), found, today())
    return json_attachment(document, f"submission-{found.id}-receipt.json")


@bp.post("/rules")
def add_rule(trial_id: int) -> Response | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    form = request.form
    try:
        dest = get_destination(db(), ctx["trial"], _int("destination", form.get("destination")))
        timepoint = form.get("timepoint_pk", "")
        automation.add_rule(
            db(),
            actor(),
            ctx["trial"],
            dest,
            timepoint_pk=_int("timepoint_pk", timepoint) if timepoint else None,
            mode=form.get("mode", ""),
            daily_at=form.get("daily_at", ""),
            today=today(),
        )
    except TrialshipError as exc:
        db().rollback()
        return _page(ctx, error=str(exc)), exc.http_status
    commit()
    flash("Rule added.", "success")
    return redirect(url_for("submissions.index", trial_id=trial_id))


@bp.post("/rules/<int:rule_pk>/toggle")
def toggle_rule(trial_id: int, rule_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    rule = automation.get_rule(db(), ctx["trial"], rule_pk)
    automation.set_rule_enabled(db(), actor(), rule, not rule.enabled, today())
    commit()
    return redirect(url_for("submissions.index", trial_id=trial_id))


@bp.post("/rules/<int:rule_pk>/delete")
def delete_rule(trial_id: int, rule_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    rule = automation.get_rule(db(), ctx["trial"], rule_pk)
    automation.delete_rule(db(), actor(), rule, today())
    commit()
    flash(f"Rule {rule_pk} removed.", "success")
    return redirect(url_for("submissions.index", trial_id=trial_id))
