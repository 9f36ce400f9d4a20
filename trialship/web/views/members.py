"""Who belongs to a trial: trial admins and admins add members by e-mail, change roles, remove."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.services import memberships, users
from trialship.services.authz import Capability
from trialship.web.context import actor, commit, db, today
from trialship.web.forms import save_or_rerender
from trialship.web.views.trials import ROLES, writable_trial

bp = Blueprint("members", __name__, url_prefix="/trials/<int:trial_id>/members")


def _back(trial_id: int) -> Response:
    return redirect(url_for("trials.detail", trial_id=trial_id, _anchor="members"))


@bp.route("/new", methods=["GET", "POST"])
def new(trial_id: int) -> Response | str | tuple[str, int]:
    # Checked before the e-mail is looked up: others must not learn who has an account.
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    if request.method == "GET":
        return render_template("members/form.html", **ctx, roles=ROLES, values={}, error=None)
    membership, page = save_or_rerender(
        lambda: memberships.set_membership(
            db(),
            actor(),
            ctx["trial"],
            users.user_by_email(db(), request.form.get("email", "")),
            request.form.get("role", ""),
            today(),
        ),
        "members/form.html",
        **ctx,
        roles=ROLES,
    )
    if page:
        return page
    flash(f"{membership.user.email} is now {membership.role.value} of this trial.", "success")
    return _back(trial_id)


@bp.post("/<int:user_id>/role")
def change_role(trial_id: int, user_id: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    user = users.get_user(db(), user_id)
    membership = memberships.set_membership(
        db(), actor(), ctx["trial"], user, request.form.get("role", ""), today()
    )
    commit()
    flash(f"{user.email} is now {membership.role.value} of this trial.", "success")
    return _back(trial_id)


@bp.post("/<int:user_id>/remove")
def remove(trial_id: int, user_id: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    user = users.get_user(db(), user_id)
    memberships.remove_membership(db(), actor(), ctx["trial"], user, today())
    commit()
    flash(f"{user.email} was removed from this trial.", "success")
    return _back(trial_id)
