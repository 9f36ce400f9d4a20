"""API routes of disc sets: plan, create (a queued build job), list, get, download, burn (a
queued job), mark burned; rebuild or delete a failed set.

Registered on the API blueprint (imported by `trialship.web.api`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, send_file, url_for
from werkzeug.wrappers import Response

from trialship.errors import ValidationError
from trialship.jobs.tasks import enqueue_disc_build, enqueue_disc_burn
from trialship.registry.discs import Disc
from trialship.registry.models import Exam, Trial
from trialship.services import disc_burns, disc_sets
from trialship.services.authz import Capability, require
from trialship.web.api import serialize_discs as serialize
from trialship.web.api.serialize import job as serialize_job
from trialship.web.api.views import _trial, bp, json_body
from trialship.web.context import actor, commit, db, runtime, today

CHOICE_FIELDS = frozenset(
    {"exam_ids", "subject_id", "timepoint_id", "state", "media", "policy", "label_template"}
)


def _choice(trial: Trial, body: dict[str, Any]) -> tuple[list[Exam], dict[str, str]]:
    unknown = set(body) - CHOICE_FIELDS
    if unknown:
        raise ValidationError(f"unknown field {sorted(unknown)[0]}", field=sorted(unknown)[0])
    ids = body.get("exam_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValidationError("a list of exam ids", field="exam_ids")
    text = {}
    for name in CHOICE_FIELDS - {"exam_ids"}:
        value = body.get(name, "")
        if not isinstance(value, str):
            raise ValidationError("a string", field=name)
        text[name] = value
    exams = disc_sets.choose_exams(
        db(),
        trial,
        exam_ids=ids,
        subject=text["subject_id"],
        timepoint=text["timepoint_id"],
        state=text["state"],
    )
    options = {
        "media": text["media"] or trial.disc_media,
        "policy": text["policy"] or trial.disc_policy,
        "label_template": text["label_template"] or trial.label_template,
    }
    return exams, options


def _media_trial(trial_id: int) -> Trial:
    trial = _trial(trial_id)
    require(db(), actor(), trial, Capability.MEDIA, today())
    return trial


@bp.post("/trials/<int:trial_id>/disc-sets/plan")
def plan_disc_set(trial_id: int) -> Response:
    trial = _media_trial(trial_id)
    exams, options = _choice(trial, json_body())
    plan = disc_sets.plan_disc_set(
        db(),
        actor(),
        trial,
        exams,
        media=options["media"],
        policy=options["policy"],
        today=today(),
    )
    return jsonify(serialize.plan(plan))


@bp.post("/trials/<int:trial_id>/disc-sets")
def create_disc_set(trial_id: int) -> tuple[Response, int, dict[str, str]]:
    trial = _media_trial(trial_id)
    exams, options = _choice(trial, json_body())
    disc_set = disc_sets.create_disc_set(db(), actor(), trial, exams, today=today(), **options)
    commit()
    assert disc_set.job_id is not None
    enqueue_disc_build(runtime(), disc_set.job_id)
    db().refresh(disc_set)
    location = url_for(".get_disc_set", trial_id=trial.id, set_id=disc_set.id)
    return jsonify(serialize.disc_set(disc_set)), 202, {"Location": location}


@bp.get("/trials/<int:trial_id>/disc-sets")
def list_disc_sets(trial_id: int) -> Response:
    trial = _trial(trial_id)
    found = disc_sets.list_disc_sets(db(), trial)
    return jsonify({"items": [serialize.disc_set(s) for s in found]})


@bp.get("/trials/<int:trial_id>/disc-sets/<int:set_id>")
def get_disc_set(trial_id: int, set_id: int) -> Response:
    trial = _trial(trial_id)
    return jsonify(serialize.disc_set(disc_sets.get_disc_set(db(), trial, set_id)))


def _download(trial_id: int, disc_pk: int, kind: str) -> Response:
    trial = _media_trial(trial_id)
    disc = disc_sets.get_disc(db(), trial, disc_pk)
    path = disc_sets.disc_file(runtime().settings.data_dir, disc, kind)
    mimetype = "application/x-iso9660-image" if kind == "iso" else "application/pdf"
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=path.name)


@bp.get("/trials/<int:trial_id>/discs/<int:disc_pk>/image.iso")
def download_disc_image(trial_id: int, disc_pk: int) -> Response:
    return _download(trial_id, disc_pk, "iso")


@bp.get("/trials/<int:trial_id>/discs/<int:disc_pk>/label.pdf")
def download_disc_label(trial_id: int, disc_pk: int) -> Response:
    return _download(trial_id, disc_pk, "label")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


def _disc(trial_id: int, disc_pk: int) -> Disc:
    return disc_sets.get_disc(db(), _media_trial(trial_id), disc_pk)


@bp.post("/trials/<int:trial_id>/discs/<int:disc_pk>/burn")
def burn_disc(trial_id: int, disc_pk: int) -> tuple[Response, int, dict[str, str]]:
    """Queue the burn (202, the job; poll it). 409 when the drive (or the disc) is busy."""
    disc = _disc(trial_id, disc_pk)
    body = json_body()
    device = body.get("device", "")
    if not isinstance(device, str) or set(body) - {"device"}:
        raise ValidationError('send {"device": "/dev/sr0"}', field="device")
    job = disc_burns.create_burn_job(
        db(), actor(), disc, device, data_dir=runtime().settings.data_dir, today=today()
    )
    commit()
    enqueue_disc_burn(runtime(), job.id)
    db().refresh(job)
    return jsonify(serialize_job(job)), 202, {"Location": url_for(".get_job", job_id=job.id)}


@bp.post("/trials/<int:trial_id>/discs/<int:disc_pk>/mark-burned")
def mark_disc_burned(trial_id: int, disc_pk: int) -> Response:
    disc = _disc(trial_id, disc_pk)
    disc_burns.mark_burned(db(), actor(), disc, today=today(), now=_now())
    commit()
    return jsonify(serialize.disc(disc))


@bp.post("/trials/<int:trial_id>/disc-sets/<int:set_id>/rebuild")
def rebuild_disc_set(trial_id: int, set_id: int) -> tuple[Response, int, dict[str, str]]:
    """Queue a failed set's build again (202, the set with its job_id)."""
    trial = _media_trial(trial_id)
    disc_set = disc_sets.get_disc_set(db(), trial, set_id)
    job = disc_sets.rebuild_disc_set(db(), actor(), disc_set, today=today())
    commit()
    enqueue_disc_build(runtime(), job.id)
    db().refresh(disc_set)
    location = url_for(".get_disc_set", trial_id=trial.id, set_id=disc_set.id)
    return jsonify(serialize.disc_set(disc_set)), 202, {"Location": location}


@bp.delete("/trials/<int:trial_id>/disc-sets/<int:set_id>")
def delete_disc_set(trial_id: int, set_id: int) -> tuple[str, int]:
    """Delete a failed set (204)."""
    trial = _media_trial(trial_id)
    disc_set = disc_sets.get_disc_set(db(), trial, set_id)
    disc_sets.delete_disc_set(
        db(), actor(), disc_set, data_dir=runtime().settings.data_dir, today=today()
    )
    commit()
    return "", 204
