"""Subjects and their original patient identifiers (encrypted, with keyed hashes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from trialship import vr
from trialship.crypto import Vault
from trialship.errors import Conflict, NotFound, ValidationError
from trialship.registry.models import Site, Subject, SubjectIdentifier, SubjectStatus, Trial
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.fields import Spec, apply, get_in_trial, validate


@dataclass(frozen=True)
class PatientIdentifier:
    """An original identifier as the hospital issued it (PatientID + IssuerOfPatientID)."""

    value: str
    issuer: str = ""


SUBJECT_FIELDS: Spec = {
    "subject_id": lambda v: vr.subject_identifier("subject_id", v),
    "reading_id": lambda v: vr.text("reading_id", v),
    "site_id": lambda v: vr.text("site_id", v),
    "status": lambda v: SubjectStatus(
        vr.choice("status", v, [s.value for s in SubjectStatus], default="enrolled")
    ),
    "consent_distribution": lambda v: vr.boolean("consent_distribution", v),
    "baseline_date": lambda v: vr.date("baseline_date", v),
    "identifiers": lambda v: parse_identifiers(v),
}


def parse_identifiers(value: object) -> list[PatientIdentifier]:
    """Accept a list of {"mrn", "issuer"} mappings, PatientIdentifier values or "MRN|ISSUER" text
    separated by semicolons (CSV and CLI)."""
    if value is None or value == "":
        return []
    items: Sequence[Any]
    if isinstance(value, str):
        items = [part for part in value.split(";") if part.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValidationError("must be a list of identifiers", field="identifiers")
    parsed = []
    for item in items:
        if isinstance(item, PatientIdentifier):
            mrn, issuer = item.value, item.issuer
        elif isinstance(item, str):
            mrn, _, issuer = item.partition("|")
        elif isinstance(item, Mapping):
            mrn, issuer = item.get("mrn", ""), item.get("issuer", "")
        else:
            raise ValidationError("each identifier needs an mrn", field="identifiers")
        parsed.append(
            PatientIdentifier(
                vr.identifier("identifiers.mrn", mrn), vr.text("identifiers.issuer", issuer)
            )
        )
    if len({(p.value.upper(), p.issuer.upper()) for p in parsed}) != len(parsed):
        raise ValidationError("lists the same identifier twice", field="identifiers")
    return parsed


def _site(session: Session, trial: Trial, code: str) -> Site | None:
    if not code:
        return None
    site = session.scalar(select(Site).where(Site.trial_id == trial.id, Site.site_id == code))
    if site is None:
        raise ValidationError(f"no site {code!r} in this trial", field="site_id")
    return site


def _set_identifiers(
    session: Session, vault: Vault, subject: Subject, identifiers: list[PatientIdentifier]
) -> None:
    for ident in identifiers:
        value_hash, issuer_hash = vault.keyed_hash(ident.value), vault.keyed_hash(ident.issuer)
        owner = session.scalar(
            select(Subject.subject_id)
            .join(SubjectIdentifier, SubjectIdentifier.subject_pk == Subject.id)
            .where(
                SubjectIdentifier.trial_id == subject.trial_id,
                SubjectIdentifier.value_hash == value_hash,
                SubjectIdentifier.issuer_hash == issuer_hash,
                Subject.id != subject.id,
            )
        )
        if owner:
            raise Conflict(
                f"this patient identifier belongs to subject {owner} already", field="identifiers"
            )
    subject.identifiers.clear()
    session.flush()
    for ident in identifiers:
        subject.identifiers.append(
            SubjectIdentifier(
                trial_id=subject.trial_id,
                value_encrypted=vault.encrypt(ident.value),
                issuer_encrypted=vault.encrypt(ident.issuer),
                value_hash=vault.keyed_hash(ident.value),
                issuer_hash=vault.keyed_hash(ident.issuer),
            )
        )


def add_subject(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    data: Mapping[str, object],
    today: dt.date,
) -> Subject:
    require(session, actor, trial, Capability.REGISTRY, today)
    values = validate(SUBJECT_FIELDS, data)
    if session.scalar(
        select(Subject.id).where(
            Subject.trial_id == trial.id, Subject.subject_id == values["subject_id"]
        )
    ):
        raise Conflict(
            f"subject {values['subject_id']} exists already in this trial", field="subject_id"
        )
    identifiers = values.pop("identifiers")
    values["site"] = _site(session, trial, values.pop("site_id"))
    subject = Subject(trial_id=trial.id, **values)
    session.add(subject)
    session.flush()
    _set_identifiers(session, vault, subject, identifiers)
    audit.record(
        session,
        actor,
        "subject.create",
        object_type="subject",
        object_id=subject.id,
        trial_id=trial.id,
        details={"subject_id": subject.subject_id, "identifiers": len(identifiers)},
    )
    return subject


def update_subject(
    session: Session,
    actor: Actor,
    vault: Vault,
    subject: Subject,
    data: Mapping[str, object],
    today: dt.date,
) -> Subject:
    trial = subject.trial
    require(session, actor, trial, Capability.REGISTRY, today)
    values = validate(SUBJECT_FIELDS, data, partial=True)
    if (
        "subject_id" in values
        and values["subject_id"] != subject.subject_id
        and session.scalar(
            select(Subject.id).where(
                Subject.trial_id == trial.id, Subject.subject_id == values["subject_id"]
            )
        )
    ):
        raise Conflict(
            f"subject {values['subject_id']} exists already in this trial", field="subject_id"
        )
    identifiers = values.pop("identifiers", None)
    if "site_id" in values:
        values["site"] = _site(session, trial, values.pop("site_id"))
    changed = apply(subject, values)
    if identifiers is not None:
        _set_identifiers(session, vault, subject, identifiers)
        changed["identifiers"] = True
    if changed:
        audit.record(
            session,
            actor,
            "subject.update",
            object_type="subject",
            object_id=subject.id,
            trial_id=trial.id,
            details={"fields": sorted(changed)},
        )
    return subject


def list_subjects(session: Session, trial: Trial) -> list[Subject]:
    """The trial's subjects by subject ID, with their site and identifiers loaded (to count)."""
    return list(
        session.scalars(
            select(Subject)
            .where(Subject.trial_id == trial.id)
            .options(selectinload(Subject.site), selectinload(Subject.identifiers))
            .order_by(Subject.subject_id)
        )
    )


def get_subject(session: Session, trial: Trial, subject_pk: int) -> Subject:
    return get_in_trial(session, Subject, trial, subject_pk, "subject")


def subject_by_code(session: Session, trial: Trial, subject_id: str) -> Subject:
    subject = session.scalar(
        select(Subject).where(Subject.trial_id == trial.id, Subject.subject_id == subject_id)
    )
    if subject is None:
        raise NotFound(
            f"no subject {subject_id!r} in trial {trial.protocol_id}", field="subject_id"
        )
    return subject


def find_by_identifier(
    session: Session, vault: Vault, trial: Trial, value: str, issuer: str | None = None
) -> list[Subject]:
    """Subjects whose original identifier matches, compared by keyed hash only."""
    query = (
        select(Subject)
        .join(SubjectIdentifier, SubjectIdentifier.subject_pk == Subject.id)
        .where(
            SubjectIdentifier.trial_id == trial.id,
            SubjectIdentifier.value_hash == vault.keyed_hash(value),
        )
    )
    if issuer:
        query = query.where(SubjectIdentifier.issuer_hash == vault.keyed_hash(issuer))
    return list(session.scalars(query.distinct()))
