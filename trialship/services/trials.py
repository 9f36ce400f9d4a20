"""Trials and their sites."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship import vr
from trialship.errors import Conflict, NotFound, ValidationError
from trialship.registry.models import Membership, Site, Trial, TrialStatus
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require, require_admin
from trialship.services.fields import Spec, apply, get_in_trial, validate
from trialship.services.trial_profile import (
    check_deid_text,
    default_deid_text,
    refuse_new_date_shift,
)

DISC_MEDIA = ["auto", "cd74", "cd80", "dvd", "dvd-dl", "bd25"]
DISC_POLICIES = ["pack", "subject", "timepoint", "exam"]


def _profile(value: object) -> str:
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            "must be text (the [deid] part of the profile, as TOML)", field="deid_profile"
        )
    text = value or ""
    if text.strip():
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"is not valid TOML: {exc}", field="deid_profile") from None
    return text


TRIAL_FIELDS: Spec = {
    "protocol_id": lambda v: vr.identifier("protocol_id", v),
    "sponsor_name": lambda v: vr.text("sponsor_name", v, required=True),
    "short_name": lambda v: vr.text("short_name", v, required=True),
    "protocol_name": lambda v: vr.text("protocol_name", v),
    "ethics_committee_name": lambda v: vr.text("ethics_committee_name", v),
    "ethics_approval_number": lambda v: vr.text("ethics_approval_number", v),
    "irb_expiry": lambda v: vr.date("irb_expiry", v),
    "status": lambda v: TrialStatus(
        vr.choice("status", v, [s.value for s in TrialStatus], default="active")
    ),
    "coordinating_center": lambda v: vr.text("coordinating_center", v),
    "deid_profile": _profile,
    "disc_media": lambda v: vr.choice("disc_media", v, DISC_MEDIA, default="auto"),
    "disc_policy": lambda v: vr.choice("disc_policy", v, DISC_POLICIES, default="pack"),
    "label_template": lambda v: vr.text("label_template", v or "cd_face", vr="SH"),
    "missing_after_days": lambda v: vr.integer(
        "missing_after_days", 30 if v in (None, "") else v, minimum=0, maximum=3650
    ),
}
SITE_FIELDS: Spec = {
    "site_id": lambda v: vr.identifier("site_id", v),
    "name": lambda v: vr.text("name", v),
}


def list_trials(session: Session, actor: Actor) -> list[Trial]:
    query = select(Trial).order_by(Trial.protocol_id)
    if not actor.is_admin:
        query = query.join(Membership, Membership.trial_id == Trial.id).where(
            Membership.user_id == actor.user_id
        )
    return list(session.scalars(query))


def get_trial(session: Session, actor: Actor, trial_id: int, today: dt.date) -> Trial:
    trial = session.get(Trial, trial_id)
    if trial is None:
        raise NotFound(f"no trial {trial_id}")
    require(session, actor, trial, Capability.READ, today)
    return trial


def trial_by_protocol(session: Session, actor: Actor, protocol_id: str, today: dt.date) -> Trial:
    trial = session.scalar(select(Trial).where(Trial.protocol_id == protocol_id.strip()))
    if trial is None:
        raise NotFound(f"no trial with protocol ID {protocol_id!r}", field="trial")
    require(session, actor, trial, Capability.READ, today)
    return trial


def create_trial(session: Session, actor: Actor, data: Mapping[str, object]) -> Trial:
    require_admin(actor)
    values = validate(TRIAL_FIELDS, data)
    if session.scalar(select(Trial.id).where(Trial.protocol_id == values["protocol_id"])):
        raise Conflict(
            f"a trial with protocol ID {values['protocol_id']} exists already", field="protocol_id"
        )
    trial = Trial(**values)
    trial.deid_profile = check_deid_text(trial, trial.deid_profile or default_deid_text(trial))
    session.add(trial)
    session.flush()
    audit.record(
        session,
        actor,
        "trial.create",
        object_type="trial",
        object_id=trial.id,
        trial_id=trial.id,
        details={"protocol_id": trial.protocol_id},
    )
    return trial


def update_trial(
    session: Session, actor: Actor, trial: Trial, data: Mapping[str, object], today: dt.date
) -> Trial:
    require(session, actor, trial, Capability.REGISTRY, today)
    if "deid_profile" in data and data["deid_profile"] is None:
        # (absent on create means the default profile; null on an update would reset it)
        raise ValidationError(
            "must be text: send the profile, or an empty string for the default one",
            field="deid_profile",
        )
    values = validate(TRIAL_FIELDS, data, partial=True)
    # The approval and the status decide who may write: only admins change them.
    if {"irb_expiry", "status", "protocol_id"} & {
        k for k, v in values.items() if getattr(trial, k) != v
    }:
        require_admin(actor)
    if (
        "protocol_id" in values
        and values["protocol_id"] != trial.protocol_id
        and session.scalar(select(Trial.id).where(Trial.protocol_id == values["protocol_id"]))
    ):
        raise Conflict(
            f"a trial with protocol ID {values['protocol_id']} exists already", field="protocol_id"
        )
    before = trial.deid_profile
    changed = apply(trial, values)
    if changed:
        # The profile is checked as a whole with the trial's (possibly new) fields.
        check_deid_text(trial, trial.deid_profile)
        if "deid_profile" in changed:
            refuse_new_date_shift(session, trial, before, trial.deid_profile)
        audit.record(
            session,
            actor,
            "trial.update",
            object_type="trial",
            object_id=trial.id,
            trial_id=trial.id,
            details={"fields": sorted(changed)},
        )
    return trial


def add_site(
    session: Session, actor: Actor, trial: Trial, data: Mapping[str, object], today: dt.date
) -> Site:
    require(session, actor, trial, Capability.REGISTRY, today)
    values = validate(SITE_FIELDS, data)
    if session.scalar(
        select(Site.id).where(Site.trial_id == trial.id, Site.site_id == values["site_id"])
    ):
        raise Conflict(f"site {values['site_id']} exists already in this trial", field="site_id")
    site = Site(trial_id=trial.id, **values)
    session.add(site)
    session.flush()
    audit.record(
        session,
        actor,
        "site.create",
        object_type="site",
        object_id=site.id,
        trial_id=trial.id,
        details={"site_id": site.site_id},
    )
    return site


def get_site(session: Session, trial: Trial, site_pk: int) -> Site:
    return get_in_trial(session, Site, trial, site_pk, "site")


def site_by_code(session: Session, trial: Trial, site_id: str) -> Site:
    site = session.scalar(select(Site).where(Site.trial_id == trial.id, Site.site_id == site_id))
    if site is None:
        raise NotFound(f"no site {site_id!r} in trial {trial.protocol_id}", field="site_id")
    return site


def update_site(
    session: Session, actor: Actor, site: Site, data: Mapping[str, object], today: dt.date
) -> Site:
    require(session, actor, site.trial, Capability.REGISTRY, today)
    values = validate(SITE_FIELDS, data, partial=True)
    if (
        "site_id" in values
        and values["site_id"] != site.site_id
        and session.scalar(
            select(Site.id).where(Site.trial_id == site.trial_id, Site.site_id == values["site_id"])
        )
    ):
        raise Conflict(f"site {values['site_id']} exists already in this trial", field="site_id")
    changed = apply(site, values)
    if changed:
        audit.record(
            session,
            actor,
            "site.update",
            object_type="site",
            object_id=site.id,
            trial_id=site.trial_id,
            details={"fields": sorted(changed)},
        )
    return site
