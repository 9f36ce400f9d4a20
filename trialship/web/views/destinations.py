"""Destinations of a trial: list, add, edit, test connection, confirm the SFTP host key."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialship.errors import TrialshipError, ValidationError
from trialship.registry.delivery import DEFAULT_REMOTE_PATH, Destination, DestinationKind
from trialship.services import destinations as service
from trialship.services.authz import Capability
from trialship.web.context import actor, commit, db, runtime, today
from trialship.web.forms import form_values, save_or_rerender
from trialship.web.views.trials import trial_context, writable_trial

bp = Blueprint("destinations", __name__, url_prefix="/trials/<int:trial_id>/destinations")
CHECKBOXES = {"enabled", "tls", "commitment", "generate_key"}
CHOICES = {
    "kinds": service.KINDS,
    "auths": service.AUTHS,
    "package_forms": service.PACKAGE_FORMS,
    "default_remote_path": DEFAULT_REMOTE_PATH,
}


def _form_fields(kind: DestinationKind) -> tuple[list[str], list[str]]:
    """(plain fields, checkboxes) the form of this kind submits; kind itself is in the URL."""
    names = [n for n in service.KIND_FIELDS[kind] if n != "kind"]
    boxes = [n for n in names if n in CHECKBOXES]
    if actor().is_admin:
        boxes.append("allow_identified")
    plain = [n for n in names if n not in CHECKBOXES and n != "allow_identified"]
    return plain, boxes


def _submitted(kind: DestinationKind) -> dict[str, Any]:
    plain, boxes = _form_fields(kind)
    values = form_values(plain, checkboxes=boxes)
    upload = request.files.get("private_key_file")
    if upload is not None and upload.filename:
        try:
            values["private_key"] = upload.read(16385).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("is not a text key file", field="private_key") from None
    # A blank secret field keeps what is stored.
    return {k: v for k, v in values.items() if not (k in service.SECRETS and v == "")}


def _shown(values: Any) -> dict[str, Any]:
    """Form values to draw again: never a secret."""
    return {k: v for k, v in dict(values).items() if k not in service.SECRETS}


def _values(dest: Destination) -> dict[str, Any]:
    names = [n for n in service.KIND_FIELDS[dest.kind] if n not in service.SECRETS]
    return {n: getattr(dest, n) for n in names if hasattr(dest, n)}


def _kind(value: str | None) -> DestinationKind:
    try:
        return DestinationKind(value or "sftp")
    except ValueError:
        return DestinationKind.SFTP


@bp.get("/")
def index(trial_id: int) -> str:
    ctx = trial_context(trial_id)
    return render_template(
        "destinations/index.html",
        **ctx,
        destinations=service.list_destinations(db(), ctx["trial"]),
    )


@bp.get("/<int:destination_pk>")
def show(trial_id: int, destination_pk: int) -> str:
    ctx = trial_context(trial_id)
    dest = service.get_destination(db(), ctx["trial"], destination_pk)
    return render_template("destinations/show.html", **ctx, dest=dest)


@bp.route("/new", methods=["GET", "POST"])
def new(trial_id: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    kind = _kind(request.values.get("kind"))
    form = {**ctx, **CHOICES, "dest": None, "kind": kind.value, "is_admin": actor().is_admin}
    if request.method == "GET":
        values = {"enabled": True, "remote_path": DEFAULT_REMOTE_PATH, "auth": "key"}
        return render_template("destinations/form.html", values=values, error=None, **form)

    def save() -> Destination:
        data = {**_submitted(kind), "kind": kind.value}
        return service.add_destination(db(), actor(), runtime().vault, ctx["trial"], data, today())

    dest, page = save_or_rerender(
        save, "destinations/form.html", values=_shown(request.form), **form
    )
    if page:
        return page
    flash(f"Destination {dest.name} added. Test the connection next.", "success")
    return redirect(url_for(".show", trial_id=trial_id, destination_pk=dest.id))


@bp.route("/<int:destination_pk>/edit", methods=["GET", "POST"])
def edit(trial_id: int, destination_pk: int) -> Response | str | tuple[str, int]:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    dest = service.get_destination(db(), ctx["trial"], destination_pk)
    form = {**ctx, **CHOICES, "dest": dest, "kind": dest.kind.value, "is_admin": actor().is_admin}
    if request.method == "GET":
        return render_template("destinations/form.html", values=_values(dest), error=None, **form)
    _, page = save_or_rerender(
        lambda: service.update_destination(
            db(), actor(), runtime().vault, dest, _submitted(dest.kind), today()
        ),
        "destinations/form.html",
        values={**_values(dest), **_shown(request.form)},
        **form,
    )
    if page:
        return page
    flash(f"Destination {dest.name} saved.", "success")
    return redirect(url_for(".show", trial_id=trial_id, destination_pk=dest.id))


@bp.post("/<int:destination_pk>/test")
def test(trial_id: int, destination_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    dest = service.get_destination(db(), ctx["trial"], destination_pk)
    result = service.check_connection(db(), actor(), runtime().vault, dest, today())
    commit()
    category = {"ok": "success", "unpinned": "warning"}.get(result.outcome, "error")
    flash(f"Test connection: {result.outcome}. {result.message}", category)
    return redirect(url_for(".show", trial_id=trial_id, destination_pk=dest.id))


@bp.post("/<int:destination_pk>/pin")
def pin(trial_id: int, destination_pk: int) -> Response:
    ctx = writable_trial(trial_id, Capability.TRIAL_ADMIN)
    dest = service.get_destination(db(), ctx["trial"], destination_pk)
    try:
        service.pin_host_key(db(), actor(), dest, request.form.get("fingerprint"), today())
    except TrialshipError as exc:
        db().rollback()
        flash(f"Host key not confirmed: {exc}", "error")
    else:
        commit()
        flash(f"Host key {dest.host_key_fingerprint} confirmed for {dest.name}.", "success")
    return redirect(url_for(".show", trial_id=trial_id, destination_pk=destination_pk))
