"""Writing profiles back to TOML: for the settings page, exports and a new trial's template."""

from __future__ import annotations

import json

from trialship.deid.options import Option
from trialship.deid.profile import Profile, canonical


def _string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _strings(values: list[str]) -> str:
    return "[" + ", ".join(_string(value) for value in values) + "]"


def to_toml(profile: Profile, *, include_secret: bool = False) -> str:
    """The profile as TOML that `parse_profile` reads back to an equal Profile.

    An inline secret is written only with `include_secret=True`; a secret file path always is.
    """
    data = canonical(profile)
    lines = ["[trial]"]
    lines += [f"{key} = {_string(value)}" for key, value in data["trial"].items() if value]
    lines += [
        "",
        "[deid]",
        f"name = {_string(profile.name)}",
        f"options = {_strings(data['options'])}",
    ]
    if profile.uid_secret_file:
        lines.append(f"uid_secret_file = {_string(profile.uid_secret_file)}")
    elif include_secret and profile.uid_secret:
        lines.append(f"uid_secret = {_string(profile.uid_secret.decode('utf-8'))}")
    lo, hi = profile.date_shift_days
    lines += [
        f"private_tags = {_string(profile.private_tags.value)}",
        f"patient_age = {_string(profile.patient_age.value)}",
        f"date_shift_days = [{lo}, {hi}]",
        "",
        "[deid.keep]",
        f"keywords = {_strings(data['keep'])}",
        "",
        "[deid.remove]",
        f"keywords = {_strings(data['remove'])}",
        "",
        "[deid.replace]",
    ]
    lines += [f"{keyword} = {_string(template)}" for keyword, template in profile.replace]
    return "\n".join(lines) + "\n"


DEFAULT_OPTIONS = (
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
    Option.RETAIN_PATIENT_CHARACTERISTICS,
    Option.RETAIN_DEVICE_IDENTITY,
    Option.CLEAN_DESCRIPTORS,
)


def default_profile_toml(
    *, sponsor_name: str, protocol_id: str, uid_secret: str, protocol_name: str = ""
) -> str:
    """A commented starting profile for a new trial. The caller supplies a random secret."""
    options = _strings([option.value for option in DEFAULT_OPTIONS])
    return f"""\
# trialship de-identification profile (PS3.15 Annex E Basic Profile + options)
[trial]
sponsor_name = {_string(sponsor_name)}
protocol_id = {_string(protocol_id)}
protocol_name = {_string(protocol_name)}

[deid]
name = {_string(protocol_id + " default")}
# Options by name: clean_pixel_data, clean_recognizable_visual_features, clean_graphics,
# clean_structured_content, clean_descriptors, retain_longitudinal_full_dates,
# retain_longitudinal_modified_dates, retain_patient_characteristics, retain_device_identity,
# retain_uids, retain_safe_private, retain_institution_identity
options = {options}
# Keys the UID remapping and the date shift. Keep it secret; never change it mid-trial.
uid_secret = {_string(uid_secret)}
private_tags = "remove"          # remove | retain_safe | keep
patient_age = "at_exam_capped"   # or "remove"
date_shift_days = [-365, -30]    # used with retain_longitudinal_modified_dates

[deid.keep]
keywords = []

[deid.remove]
keywords = []

[deid.replace]
# InstitutionName = "{{site_id}}"
"""
