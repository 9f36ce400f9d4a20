"""A trial's de-identification profile: the [deid] part is stored as TOML text, the [trial]
part comes from the registry, and the secret is kept encrypted apart from the text.

So the profile a user edits never shows the secret, and exporting it (with the secret) is a
trial admin's act, audited.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialship.crypto import Vault
from trialship.deid import Profile, ProfileError, default_profile_toml, to_toml
from trialship.deid.profile import profile_from_data
from trialship.errors import ValidationError
from trialship.registry.models import Exam, Trial
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require

_SECRET_KEYS = ("uid_secret", "uid_secret_file")
# Stands in for the real secret while checking text a user typed (the secret is not in it).
_CHECK_SECRET = "x" * 32


def trial_table(trial: Trial) -> dict[str, str]:
    """The profile's [trial] table, from the registry."""
    return {
        "sponsor_name": trial.sponsor_name,
        "protocol_id": trial.protocol_id,
        "protocol_name": trial.protocol_name,
        "coordinating_center_name": trial.coordinating_center,
        "ethics_committee_name": trial.ethics_committee_name,
        "ethics_committee_approval_number": trial.ethics_approval_number,
    }


def default_deid_text(trial: Trial) -> str:
    """The [deid] part of a new trial's profile (the registry supplies the rest)."""
    full = default_profile_toml(
        sponsor_name=trial.sponsor_name or "-",
        protocol_id=trial.protocol_id or "-",
        uid_secret=_CHECK_SECRET,
    )
    text = full[full.index("[deid]") :]
    return (
        "\n".join(
            line
            for line in text.splitlines()
            if not line.startswith(("uid_secret", "# Keys the UID"))
        )
        + "\n"
    )


def _deid_table(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"is not valid TOML: {exc}", field="deid_profile") from None
    extra = sorted(set(data) - {"deid"})
    if extra:
        raise ValidationError(
            f"holds [{extra[0]}]: only the [deid] part is edited here; the [trial] part comes "
            "from the trial's own fields",
            field="deid_profile",
        )
    table = dict(data.get("deid", {}))
    if any(key in table for key in _SECRET_KEYS):
        raise ValidationError(
            "must not hold uid_secret: trialship keeps the trial's secret (set it with "
            "`trialship trial profile import`)",
            field="deid_profile",
        )
    return table


def _profile(trial: Trial, deid: dict[str, Any], secret: str) -> Profile:
    try:
        return profile_from_data(
            {"trial": trial_table(trial), "deid": {**deid, "uid_secret": secret}}
        )
    except ProfileError as exc:
        raise ValidationError(str(exc), field="deid_profile") from None


def check_deid_text(trial: Trial, text: str) -> str:
    """Validate the [deid] text as part of this trial's profile; return it unchanged."""
    if text.strip():
        _check_replacements(trial, _profile(trial, _deid_table(text), _CHECK_SECRET))
    return text


def _check_replacements(trial: Trial, profile: Profile) -> None:
    """The replace templates fit their VRs for the subjects and time points registered now
    (one registered later that does not fit quarantines its files, naming the template)."""
    if not profile.replace:
        return
    subjects = [
        {
            "subject_id": subject.subject_id,
            "site_id": subject.site.site_id if subject.site else "",
            "site_name": subject.site.name if subject.site else "",
        }
        for subject in trial.subjects
    ] or [dict.fromkeys(("subject_id", "site_id", "site_name"), "")]
    timepoints = [timepoint.timepoint_id for timepoint in trial.timepoints] or [""]
    # Each subject with the longest time point ID, and each time point with the first subject:
    # every value is checked once and the longest pair is among them.
    pairs = [(subject, max(timepoints, key=len)) for subject in subjects]
    pairs += [(subjects[0], timepoint) for timepoint in timepoints]
    for subject, timepoint in pairs:
        try:
            profile.replacements({**subject, "timepoint_id": timepoint})
        except ProfileError as exc:
            where = f" for subject {subject['subject_id']}" if subject["subject_id"] else ""
            raise ValidationError(f"{exc}{where}", field="deid_profile") from None


def _refuse_new_secret_with_exams(session: Session, trial: Trial) -> None:
    """The secret keys every new UID and date shift: once exams are de-identified with it, a
    new one would give the next file of the same study other UIDs than its first."""
    exams = _exam_count(session, trial)
    if exams:
        raise ValidationError(
            f"holds another uid_secret, and {exams} exam(s) of {trial.protocol_id} are "
            "de-identified with the current one: their studies would get other UIDs and date "
            "shifts from now on. Import the profile without uid_secret to adopt the rest",
            field="deid.uid_secret",
        )


def refuse_new_date_shift(session: Session, trial: Trial, old_text: str, new_text: str) -> None:
    """A subject's date shift is drawn from the range: once exams are de-identified, another
    range would shift the next file of a study other days than its first."""
    try:
        old, new = (
            _profile(trial, _deid_table(text or default_deid_text(trial)), _CHECK_SECRET)
            for text in (old_text, new_text)
        )
    except ValidationError:
        return  # (a profile that does not load is refused, or was never used, elsewhere)
    if old.date_shift_days == new.date_shift_days:
        return
    exams = _exam_count(session, trial)
    if exams:
        lo, hi = old.date_shift_days
        raise ValidationError(
            f"cannot change: {exams} exam(s) of {trial.protocol_id} are de-identified with "
            f"dates shifted within [{lo}, {hi}] days, and their studies' next files would be "
            "shifted otherwise",
            field="deid.date_shift_days",
        )


def _exam_count(session: Session, trial: Trial) -> int:
    return session.scalar(select(func.count(Exam.id)).where(Exam.trial_id == trial.id)) or 0


def trial_secret(vault: Vault, trial: Trial) -> str:
    """The trial's secret, made on first use (stable for the life of the trial)."""
    if trial.uid_secret_encrypted is None:
        trial.uid_secret_encrypted = vault.encrypt(secrets.token_hex(32))
    return vault.decrypt(trial.uid_secret_encrypted)


def trial_profile(vault: Vault, trial: Trial) -> Profile:
    """The profile the trial's exams are de-identified with."""
    text = trial.deid_profile if trial.deid_profile.strip() else default_deid_text(trial)
    return _profile(trial, _deid_table(text), trial_secret(vault, trial))


def export_profile(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    *,
    include_secret: bool,
    today: dt.date,
) -> str:
    """The whole profile as TOML that `trialship deid --profile` reads."""
    require(
        session, actor, trial, Capability.TRIAL_ADMIN if include_secret else Capability.READ, today
    )
    profile = trial_profile(vault, trial)
    if include_secret:
        audit.record(
            session,
            actor,
            "trial.profile_export",
            object_type="trial",
            object_id=trial.id,
            trial_id=trial.id,
            details={"secret": True},
        )
    return to_toml(profile, include_secret=include_secret)


def import_profile(
    session: Session, actor: Actor, vault: Vault, trial: Trial, text: str, today: dt.date
) -> None:
    """Adopt a standalone profile: its [deid] part, and its secret so UIDs stay the same."""
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"is not valid TOML: {exc}", field="profile") from None
    named = (
        data.get("trial", {}).get("protocol_id") if isinstance(data.get("trial"), dict) else None
    )
    if named is not None and str(named).strip() != trial.protocol_id:
        raise ValidationError(
            f"is the profile of protocol {str(named).strip()!r}, not of {trial.protocol_id}",
            field="trial.protocol_id",
        )
    deid = dict(data.get("deid", {}))
    secret = deid.pop("uid_secret", None)
    if "uid_secret_file" in deid:
        raise ValidationError(
            "uses uid_secret_file: put the secret inline to import it", field="deid.uid_secret_file"
        )
    body = to_toml(_profile(trial, deid, secret or _CHECK_SECRET), include_secret=False)
    if secret and str(secret) != trial_secret(vault, trial):
        _refuse_new_secret_with_exams(session, trial)
    refuse_new_date_shift(session, trial, trial.deid_profile, body[body.index("[deid]") :])
    trial.deid_profile = body[body.index("[deid]") :]
    if secret:
        trial.uid_secret_encrypted = vault.encrypt(str(secret))
    audit.record(
        session,
        actor,
        "trial.profile_import",
        object_type="trial",
        object_id=trial.id,
        trial_id=trial.id,
        details={"secret": bool(secret)},
    )
