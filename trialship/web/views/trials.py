"""Trials: list, detail, create, edit; sites."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.services import trials as trial_service
from trialship.services.authz import Capability, capabilities, lock_reason
from trialship.services.completeness import completeness
from trialship.services.memberships import list_members
from trialship.services.timepoints import list_timepoints
from trialship.web.context import actor, db, today
from trialship.web.forms import form_values, save_or_rerender

bp = Blueprint("trials", __name__)
TRIAL_FORM = [name for name in trial_service.TRIAL_FIELDS if name != "deid_profile"]


def trial_context(trial_id: int) -> dict[str, object]:
    """What every trial page needs: the trial, the user's capabilities and the lock banner."""
    trial = trial_service.get_trial(db(), actor(), trial_id, today())
    caps = capabilities(db(), actor(), trial.id)
    locked = lock_reason(trial, today())
    writable = not (locked and not actor().is_admin)
    return {
        "trial": trial,
        "caps": caps,
        "locked": locked,
        "can_edit": writable and Capability.REGISTRY in caps,
        "can_admin": writable and Capability.TRIAL_ADMIN in caps,
        "today": today(),
    }


@bp.get("/")
def index() -> str:
    return render_template(
        "trials/index.html", trials=trial_service.list_trials(db(), actor()), today=today()
    )


@bp.route("/trials/new", methods=["GET", "POST"])
def new() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template("trials/form.html", trial=None, values={}, error=None)
    trial, page = save_or_rerender(
        lambda: trial_service.create_trial(db(), actor(), form_values(TRIAL_FORM)),
        "trials/form.html",
        trial=None,
    )
    if page:
        return page
    flash(f"Trial {trial.protocol_id} created.", "success")
    return redirect(url_for("trials.detail", trial_id=trial.id))


@bp.get("/trials/<int:trial_id>")
def detail(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    trial = ctx["trial"]
    return render_template(
        "trials/detail.html",
        **ctx,
        timepoints=list_timepoints(db(), trial),  # type: ignore[arg-type]
        members=list_members(db(), trial),  # type: ignore[arg-type]
        matrix=completeness(db(), trial, today()),  # type: ignore[arg-type]
    )
