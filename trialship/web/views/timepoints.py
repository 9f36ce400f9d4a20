"""The schedule: time points with their visit windows and expected exams."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.registry.models import TimePoint
from trialship.services import timepoints as timepoint_service
from trialship.web.context import actor, db, today
from trialship.web.forms import form_values, save_or_rerender
from trialship.web.views.trials import writable_trial

bp = Blueprint("timepoints", __name__, url_prefix="/trials/<int:trial_id>/timepoints")
FIELDS = list(timepoint_service.TIMEPOINT_FIELDS)


def expected_text(timepoint: TimePoint) -> str:
    """The expected exams as the form's text: "CT:CHEST*:1; MR::2"."""
    return "; ".join(
        f"{e.modality}:{e.description_pattern}:{e.count}" for e in timepoint.expected_exams
    )


def _values(timepoint: TimePoint) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(timepoint, name) for name in FIELDS if name != "expected_exams"
    }
    values["expected_exams"] = expected_text(timepoint)
    return values


@bp.route("/new", methods=["GET", "POST"])
def new(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    if request.method == "GET":
        return render_template("timepoints/form.html", **ctx, timepoint=None, values={}, error=None)
    timepoint, page = save_or_rerender(
        lambda: timepoint_service.add_timepoint(
            db(), actor(), ctx["trial"], form_values(FIELDS), today()
        ),
        "timepoints/form.html",
        **ctx,
        timepoint=None,
    )
    if page:
        return page
    flash(f"Time point {timepoint.timepoint_id} added.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="schedule"))


@bp.route("/<int:timepoint_pk>/edit", methods=["GET", "POST"])
def edit(trial_id: int, timepoint_pk: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    timepoint = timepoint_service.get_timepoint(db(), ctx["trial"], timepoint_pk)
    if request.method == "GET":
        return render_template(
            "timepoints/form.html",
            **ctx,
            timepoint=timepoint,
            values=_values(timepoint),
            error=None,
        )
    _, page = save_or_rerender(
        lambda: timepoint_service.update_timepoint(
            db(), actor(), timepoint, form_values(FIELDS), today()
        ),
        "timepoints/form.html",
        **ctx,
        timepoint=timepoint,
    )
    if page:
        return page
    flash(f"Time point {timepoint.timepoint_id} saved.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="schedule"))
