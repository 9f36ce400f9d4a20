"""Trials: list, detail, create, edit, completeness; sites."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.registry.models import Role, Trial, TrialStatus
from trialship.services import trials as trial_service
from trialship.services.authz import Capability, capabilities, lock_reason, require
from trialship.services.completeness import completeness as completeness_matrix
from trialship.services.memberships import list_members
from trialship.services.subjects import list_subjects
from trialship.services.timepoints import list_timepoints
from trialship.services.trial_profile import export_profile
from trialship.web.context import actor, db, runtime, today
from trialship.web.forms import form_values, save_or_rerender

bp = Blueprint("trials", __name__)
TRIAL_FORM = list(trial_service.TRIAL_FIELDS)
ROLES = [r.value for r in Role]
CHOICES = {
    "statuses": [s.value for s in TrialStatus],
    "disc_media": trial_service.DISC_MEDIA,
    "disc_policies": trial_service.DISC_POLICIES,
}


def trial_context(trial_id: int) -> dict[str, Any]:
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


def writable_trial(trial_id: int, capability: Capability = Capability.REGISTRY) -> dict[str, Any]:
    """The trial context, after refusing (403) a user who may not write what this page edits."""
    ctx = trial_context(trial_id)
    require(db(), actor(), ctx["trial"], capability, today())
    return ctx


def trial_values(trial: Trial) -> dict[str, Any]:
    """A trial's fields as the form shows them."""
    values: dict[str, Any] = {name: getattr(trial, name) for name in TRIAL_FORM}
    values["status"] = trial.status.value
    values["irb_expiry"] = trial.irb_expiry.isoformat() if trial.irb_expiry else ""
    return values


@bp.get("/")
def index() -> str:
    return render_template(
        "trials/index.html", trials=trial_service.list_trials(db(), actor()), today=today()
    )


@bp.route("/trials/new", methods=["GET", "POST"])
def new() -> Response | str | tuple[str, int]:
    if not actor().is_admin:
        abort(403, "only an administrator may create trials")
    form = {"trial": None, "admin_fields": True, **CHOICES}
    if request.method == "GET":
        return render_template("trials/form.html", values={}, error=None, **form)
    trial, page = save_or_rerender(
        lambda: trial_service.create_trial(db(), actor(), form_values(TRIAL_FORM)),
        "trials/form.html",
        **form,
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
        subjects=list_subjects(db(), trial),
        timepoints=list_timepoints(db(), trial),
        members=list_members(db(), trial),
        matrix=completeness_matrix(db(), trial, today()),
        roles=ROLES,
    )


@bp.get("/trials/<int:trial_id>/profile.toml")
def profile(trial_id: int) -> Response:
    """The whole profile, for `trialship deid --profile` (without the secret)."""
    trial = trial_context(trial_id)["trial"]
    vault = runtime().vault
    text = export_profile(db(), actor(), vault, trial, include_secret=False, today=today())
    return Response(
        text,
        content_type="application/toml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{trial.protocol_id}-profile.toml"'},
    )


@bp.route("/trials/<int:trial_id>/edit", methods=["GET", "POST"])
def edit(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    trial = ctx["trial"]
    # Fields only an admin may change are shown disabled to others (so never submitted); the
    # service refuses a request that changes them anyway.
    form = {**ctx, "admin_fields": actor().is_admin, **CHOICES}
    if request.method == "GET":
        return render_template("trials/form.html", values=trial_values(trial), error=None, **form)
    _, page = save_or_rerender(
        lambda: trial_service.update_trial(db(), actor(), trial, form_values(TRIAL_FORM), today()),
        "trials/form.html",
        values={**trial_values(trial), **request.form.to_dict()},
        **form,
    )
    if page:
        return page
    flash("Trial saved.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id))


@bp.get("/trials/<int:trial_id>/completeness")
def completeness(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    return render_template(
        "trials/completeness.html", **ctx, matrix=completeness_matrix(db(), ctx["trial"], today())
    )


@bp.route("/trials/<int:trial_id>/sites/new", methods=["GET", "POST"])
def new_site(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    if request.method == "GET":
        return render_template("sites/form.html", **ctx, site=None, values={}, error=None)
    site, page = save_or_rerender(
        lambda: trial_service.add_site(
            db(), actor(), ctx["trial"], form_values(trial_service.SITE_FIELDS), today()
        ),
        "sites/form.html",
        **ctx,
        site=None,
    )
    if page:
        return page
    flash(f"Site {site.site_id} added.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="sites"))


@bp.route("/trials/<int:trial_id>/sites/<int:site_pk>/edit", methods=["GET", "POST"])
def edit_site(trial_id: int, site_pk: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id)
    site = trial_service.get_site(db(), ctx["trial"], site_pk)
    if request.method == "GET":
        values = {"site_id": site.site_id, "name": site.name}
        return render_template("sites/form.html", **ctx, site=site, values=values, error=None)
    _, page = save_or_rerender(
        lambda: trial_service.update_site(
            db(), actor(), site, form_values(trial_service.SITE_FIELDS), today()
        ),
        "sites/form.html",
        **ctx,
        site=site,
    )
    if page:
        return page
    flash(f"Site {site.site_id} saved.", "success")
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="sites"))
