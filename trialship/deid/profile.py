"""A trial's de-identification profile: parsed and validated from TOML, hashed, written back."""

from __future__ import annotations

import enum
import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialship.deid.errors import ProfileError
from trialship.deid.options import Option
from trialship.deid.profile_checks import MANAGED_KEYWORDS as MANAGED_KEYWORDS
from trialship.deid.profile_checks import PLACEHOLDERS as PLACEHOLDERS
from trialship.deid.profile_checks import (
    enum_value,
    keyword_list,
    lo_text,
    option_set,
    rendered_value,
    replace_map,
    secret_source,
    shift_range,
    subtable,
    unknown_keys,
)


class PrivateTags(enum.Enum):
    REMOVE = "remove"
    """Remove every private attribute (Basic Profile)."""
    RETAIN_SAFE = "retain_safe"
    """Keep only the known-safe private attributes (needs the retain_safe_private option)."""
    KEEP = "keep"
    """Keep every private attribute: beyond Annex E, for trials whose sponsor requires it."""


class PatientAgePolicy(enum.Enum):
    AT_EXAM_CAPPED = "at_exam_capped"
    """Patient's Age = age at the exam, 090Y for 90 and over."""
    REMOVE = "remove"
    """No Patient's Age in the output."""


@dataclass(frozen=True)
class TrialInfo:
    sponsor_name: str
    protocol_id: str
    protocol_name: str = ""
    coordinating_center: str = ""
    ethics_committee_name: str = ""
    ethics_approval_number: str = ""


@dataclass(frozen=True)
class Profile:
    trial: TrialInfo
    name: str = "default"
    options: frozenset[Option] = frozenset()
    uid_secret: bytes | None = field(default=None, repr=False)
    uid_secret_file: str | None = None
    private_tags: PrivateTags = PrivateTags.REMOVE
    patient_age: PatientAgePolicy = PatientAgePolicy.AT_EXAM_CAPPED
    date_shift_days: tuple[int, int] = (-365, -30)
    keep: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    replace: tuple[tuple[str, str], ...] = ()

    def has(self, option: Option) -> bool:
        return option in self.options

    def replacements(self, values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """The per-trial replacements for one subject's `values` (the PLACEHOLDERS); raises
        ProfileError when a result does not fit its attribute's VR."""
        return tuple(
            (keyword, rendered_value(keyword, template, values))
            for keyword, template in self.replace
        )


_TRIAL_KEYS = {
    "sponsor_name": "sponsor_name",
    "protocol_id": "protocol_id",
    "protocol_name": "protocol_name",
    "coordinating_center_name": "coordinating_center",
    "ethics_committee_name": "ethics_committee_name",
    "ethics_committee_approval_number": "ethics_approval_number",
}
_DEID_KEYS = frozenset(
    {
        "name",
        "options",
        "uid_secret",
        "uid_secret_file",
        "private_tags",
        "patient_age",
        "date_shift_days",
        "keep",
        "remove",
        "replace",
    }
)


def parse_profile(text: str, *, read_secret_file: Callable[[str], bytes] | None = None) -> Profile:
    """Parse and validate a profile; raises ProfileError naming the offending key.

    `uid_secret_file` is recorded as given; when `read_secret_file` is passed (the CLI passes a
    function that reads the file) the secret is resolved through it: this module never reads disk.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError("toml", str(exc)) from None
    return profile_from_data(data, read_secret_file=read_secret_file)


def profile_from_data(
    data: Mapping[str, Any], *, read_secret_file: Callable[[str], bytes] | None = None
) -> Profile:
    """Validate a profile already parsed from TOML (the registry composes its own)."""
    unknown_keys(data, {"trial", "deid"}, "")
    trial_table = subtable(data, "trial", "trial")
    unknown_keys(trial_table, _TRIAL_KEYS, "trial")
    trial_values = {
        attr: lo_text(
            trial_table.get(key), f"trial.{key}", required=key in {"sponsor_name", "protocol_id"}
        )
        for key, attr in _TRIAL_KEYS.items()
    }
    trial = TrialInfo(**trial_values)
    if trial.ethics_approval_number and not trial.ethics_committee_name:
        raise ProfileError("trial.ethics_committee_name", "is required with an approval number")

    deid = subtable(data, "deid", "deid")
    unknown_keys(deid, _DEID_KEYS, "deid")
    options = option_set(deid.get("options", []))
    secret, secret_file = secret_source(deid, read_secret_file)
    private_tags = enum_value(
        PrivateTags, deid.get("private_tags"), "deid.private_tags", PrivateTags.REMOVE
    )
    if Option.RETAIN_SAFE_PRIVATE in options and private_tags is PrivateTags.REMOVE:
        raise ProfileError("deid.private_tags", "is 'remove' but retain_safe_private is enabled")
    if private_tags is PrivateTags.RETAIN_SAFE and Option.RETAIN_SAFE_PRIVATE not in options:
        raise ProfileError(
            "deid.private_tags", "'retain_safe' needs the retain_safe_private option"
        )
    keep = keyword_list(deid, "keep")
    remove = keyword_list(deid, "remove")
    replace = replace_map(deid)
    clash = (keep & remove) | (remove & {keyword for keyword, _ in replace})
    if clash:
        raise ProfileError(
            "deid.remove.keywords", f"also kept or replaced: {', '.join(sorted(clash))}"
        )
    return Profile(
        trial=trial,
        name=lo_text(deid.get("name", "default"), "deid.name", required=True),
        options=options,
        uid_secret=secret,
        uid_secret_file=secret_file,
        private_tags=private_tags,
        patient_age=enum_value(
            PatientAgePolicy,
            deid.get("patient_age"),
            "deid.patient_age",
            PatientAgePolicy.AT_EXAM_CAPPED,
        ),
        date_shift_days=shift_range(deid.get("date_shift_days")),
        keep=keep,
        remove=remove,
        replace=replace,
    )


def canonical(profile: Profile) -> dict[str, Any]:
    """The profile's content as plain data, secrets left out (only where the secret comes from)."""
    return {
        "trial": {key: getattr(profile.trial, attr) for key, attr in _TRIAL_KEYS.items()},
        "name": profile.name,
        "options": sorted(option.value for option in profile.options),
        "uid_secret_source": "file" if profile.uid_secret_file else "inline",
        "private_tags": profile.private_tags.value,
        "patient_age": profile.patient_age.value,
        "date_shift_days": list(profile.date_shift_days),
        "keep": sorted(profile.keep),
        "remove": sorted(profile.remove),
        "replace": [list(pair) for pair in profile.replace],
    }


def profile_hash(profile: Profile) -> str:
    """SHA-256 (hex) of the canonical content: two profiles that act alike hash alike.

    The secret is not hashed: a hash published in receipts must not help guess a weak secret.
    """
    blob = json.dumps(canonical(profile), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
