"""Checks that a registry value fits the DICOM VR it will be written as (PS3.5 6.2)."""

from __future__ import annotations

import datetime as dt
import re

from trialship.errors import ValidationError

# LO, SH and CS exclude control characters other than ESC, and the backslash; ST also allows
# the text format effectors TAB, LF, FF and CR (PS3.5 6.1.3).
_CONTROL = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")
_CONTROL_ST = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
MAX_LEN = {"LO": 64, "SH": 16, "ST": 1024, "CS": 16}


def text(field: str, value: object, *, vr: str = "LO", required: bool = False) -> str:
    """Return the value stripped, or raise ValidationError naming the field."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError("must be text", field=field)
    value = value.strip()
    if required and not value:
        raise ValidationError("is required", field=field)
    limit = MAX_LEN[vr]
    if len(value) > limit:
        raise ValidationError(
            f"is {len(value)} characters long; DICOM {vr} allows {limit}", field=field
        )
    if vr in {"LO", "SH", "CS"} and "\\" in value:
        raise ValidationError(f"must not contain a backslash (DICOM {vr})", field=field)
    if (_CONTROL_ST if vr == "ST" else _CONTROL).search(value):
        raise ValidationError("must not contain control characters", field=field)
    return value


def identifier(field: str, value: object) -> str:
    """A required LO identifier such as a subject, site or time point ID."""
    return text(field, value, vr="LO", required=True)


def subject_identifier(field: str, value: object) -> str:
    """A subject ID, which is also written as the patient's name (PN): there `^` and `=` would
    split it into name components and groups."""
    value = identifier(field, value)
    if "^" in value or "=" in value:
        raise ValidationError(
            "must not contain ^ or = (the subject ID is also the patient's name in DICOM, "
            "where they separate the parts of a name)",
            field=field,
        )
    return value


def integer(
    field: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool):
        raise ValidationError("must be a whole number", field=field)
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise ValidationError("must be a whole number", field=field) from None
    if minimum is not None and number < minimum:
        raise ValidationError(f"must be at least {minimum}", field=field)
    if maximum is not None and number > maximum:
        raise ValidationError(f"must be at most {maximum}", field=field)
    return number


# Registry dates are real calendar dates of a trial; the bounds keep window arithmetic
# (offsets up to a century either way) far from the limits of datetime.date.
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def date(field: str, value: object, *, required: bool = False) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError("is required", field=field)
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError("must be a date as YYYY-MM-DD", field=field) from None
    if not EARLIEST <= value <= LATEST:
        raise ValidationError(f"must lie between {EARLIEST} and {LATEST}", field=field)
    return value


def boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text_value = str(value or "").strip().lower()
    if text_value in {"1", "true", "yes", "y", "on"}:
        return True
    if text_value in {"0", "false", "no", "n", "off", ""}:
        return False
    raise ValidationError("must be yes or no", field=field)


def choice(field: str, value: object, allowed: list[str], *, default: str | None = None) -> str:
    text_value = str(value or "").strip().lower()
    if not text_value and default is not None:
        return default
    if text_value not in allowed:
        raise ValidationError(f"must be one of {', '.join(allowed)}", field=field)
    return text_value
