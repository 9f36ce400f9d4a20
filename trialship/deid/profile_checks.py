"""Validation helpers for `parse_profile`: each raises ProfileError naming the offending key."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from trialship.deid.errors import ProfileError
from trialship.deid.options import Option

PLACEHOLDERS = frozenset({"subject_id", "site_id", "site_name", "timepoint_id"})
# The engine owns these: per-trial lists must not fight the trial identity it writes.
MANAGED_KEYWORDS = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientAge",
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
        "BurnedInAnnotation",
        "ConsentForClinicalTrialUseSequence",
        "ClinicalTrialSponsorName",
        "ClinicalTrialProtocolID",
        "ClinicalTrialProtocolName",
        "ClinicalTrialSiteID",
        "ClinicalTrialSiteName",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "ClinicalTrialTimePointID",
        "ClinicalTrialTimePointDescription",
        "ClinicalTrialCoordinatingCenterName",
        "ClinicalTrialProtocolEthicsCommitteeName",
        "ClinicalTrialProtocolEthicsCommitteeApprovalNumber",
    }
)
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
# PS3.5 6.2: the longest value of each text VR (PN: per component group); UC and UT are unbounded.
_MAX_CHARS = {"AE": 16, "CS": 16, "LO": 64, "LT": 10240, "PN": 64, "SH": 16, "ST": 1024}
# In these VRs a backslash separates values: a replacement must stay one value.
_SINGLE_TEXT = frozenset({"LT", "ST", "UT"})
_EXCLUSIVE_DATES = frozenset(
    {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
)
_MIN_SECRET = 16
_MAX_SHIFT = 3660


def subtable(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ProfileError(path, "must be a table")
    return value


def lo_text(value: Any, key: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ProfileError(key, "must be a string")
    text: str = value.strip()
    if required and not text:
        raise ProfileError(key, "is required")
    if len(text) > 64 or "\\" in text or any(ord(char) < 32 for char in text):
        raise ProfileError(key, "must fit DICOM LO: at most 64 characters, no backslash")
    return text


def unknown_keys(table: Mapping[str, Any], known: Any, path: str) -> None:
    for key in table:
        if key not in known:
            raise ProfileError(f"{path}.{key}" if path else key, "unknown key")


def keywords(value: Any, key: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProfileError(key, "must be a list of DICOM keywords")
    for keyword in value:
        if tag_for_keyword(keyword) is None:
            raise ProfileError(key, f"unknown DICOM keyword {keyword!r}")
        if keyword in MANAGED_KEYWORDS:
            raise ProfileError(key, f"{keyword} is written by trialship and cannot be listed")
    return frozenset(value)


def keyword_list(deid: Mapping[str, Any], name: str) -> frozenset[str]:
    table = subtable(deid, name, f"deid.{name}")
    unknown_keys(table, {"keywords"}, f"deid.{name}")
    return keywords(table.get("keywords", []), f"deid.{name}.keywords")


def replace_map(deid: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    table = subtable(deid, "replace", "deid.replace")
    pairs: list[tuple[str, str]] = []
    for keyword, template in sorted(table.items()):
        key = f"deid.replace.{keyword}"
        keywords([keyword], key)
        tag = tag_for_keyword(keyword)
        assert tag is not None
        if dictionary_VR(tag) not in _TEXT_VRS:
            raise ProfileError(key, f"{keyword} is not a text attribute")
        if not isinstance(template, str):
            raise ProfileError(key, "must be a string")
        try:
            fields = {
                name for _, name, _, _ in string.Formatter().parse(template) if name is not None
            }
        except ValueError as exc:
            raise ProfileError(key, f"bad placeholder syntax: {exc}") from None
        if not fields <= PLACEHOLDERS:
            raise ProfileError(
                key, f"unknown placeholder(s): {', '.join(sorted(fields - PLACEHOLDERS))}"
            )
        pairs.append((keyword, template))
        # The literal text alone must fit; what the placeholders add is checked per subject.
        rendered_value(keyword, template, dict.fromkeys(PLACEHOLDERS, ""))
    return tuple(pairs)


def rendered_value(keyword: str, template: str, values: Mapping[str, str]) -> str:
    """`template` with the trial's `values` in, checked against the attribute's VR."""
    value = template.format(**values)
    vr = dictionary_VR(keyword)
    key = f"deid.replace.{keyword}"
    limit = _MAX_CHARS.get(vr)
    longest = max(len(group) for group in value.split("=")) if vr == "PN" else len(value)
    if limit is not None and longest > limit:
        raise ProfileError(
            key, f"gives {longest} characters ({value!r}); DICOM {vr} allows {limit}"
        )
    if vr not in _SINGLE_TEXT and "\\" in value:
        raise ProfileError(key, f"gives {value!r}: a backslash would split it into two values")
    if vr == "CS" and not re.fullmatch(r"[A-Z0-9 _]*", value):
        raise ProfileError(
            key, f"gives {value!r}: DICOM CS allows upper-case letters, digits, space and _"
        )
    return value


def option_set(value: Any) -> frozenset[Option]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProfileError("deid.options", "must be a list of option names")
    options: set[Option] = set()
    for name in value:
        try:
            options.add(Option(name))
        except ValueError:
            known = ", ".join(option.value for option in Option)
            raise ProfileError(
                "deid.options", f"unknown option {name!r} (known: {known})"
            ) from None
    if options >= _EXCLUSIVE_DATES:
        # Dates either stay as they are or are shifted: with both, the output would claim a
        # shift (113107) that was never applied.
        full, modified = sorted(option.value for option in _EXCLUSIVE_DATES)
        raise ProfileError("deid.options", f"{full} and {modified} exclude each other: choose one")
    return frozenset(options)


def enum_value(enum_type: Any, value: Any, key: str, default: Any) -> Any:
    if value is None:
        return default
    try:
        return enum_type(value)
    except ValueError:
        allowed = " | ".join(member.value for member in enum_type)
        raise ProfileError(key, f"must be one of {allowed}") from None


def shift_range(value: Any) -> tuple[int, int]:
    key = "deid.date_shift_days"
    if value is None:
        return (-365, -30)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        raise ProfileError(key, "must be two whole numbers [lo, hi]")
    lo, hi = value
    if lo > hi:
        raise ProfileError(key, "lo must not exceed hi")
    if lo == hi == 0 or max(abs(lo), abs(hi)) > _MAX_SHIFT:
        raise ProfileError(key, f"must be a non-zero range within ±{_MAX_SHIFT} days")
    return (lo, hi)


def secret_source(
    deid: Mapping[str, Any], read_secret_file: Callable[[str], bytes] | None
) -> tuple[bytes | None, str | None]:
    inline, path = deid.get("uid_secret"), deid.get("uid_secret_file")
    if inline is not None and path is not None:
        raise ProfileError("deid.uid_secret", "give uid_secret or uid_secret_file, not both")
    if inline is None and path is None:
        raise ProfileError("deid.uid_secret", "is required (or uid_secret_file)")
    if path is not None:
        if not isinstance(path, str) or not path.strip():
            raise ProfileError("deid.uid_secret_file", "must be a file path")
        secret = read_secret_file(path) if read_secret_file else None
        if secret is not None and len(secret.strip()) < _MIN_SECRET:
            raise ProfileError("deid.uid_secret_file", f"secret must be {_MIN_SECRET}+ bytes")
        return (secret.strip() if secret is not None else None), path
    if not isinstance(inline, str) or len(inline.strip()) < _MIN_SECRET:
        raise ProfileError("deid.uid_secret", f"must be a string of {_MIN_SECRET}+ characters")
    return inline.strip().encode("utf-8"), None
