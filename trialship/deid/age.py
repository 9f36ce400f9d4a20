"""Age at the exam as a DICOM AS value (PS3.5 6.2), capped at 90 years.

Ages of 90 and over are reported as 090Y: HIPAA Safe Harbor treats them as identifying because
few people reach them.
"""

from __future__ import annotations

import datetime as dt
import re

AGE_CAP_YEARS = 90
_AS = re.compile(r"^(\d{3})([DWMY])$")


def parse_da(value: str) -> dt.date | None:
    """A full DA value (YYYYMMDD, or the legacy YYYY.MM.DD) as a date; None otherwise."""
    digits = value.strip().replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def age_at(birth: dt.date, exam: dt.date) -> str | None:
    """Age on the exam date as a DICOM AS value; None when the exam precedes the birth.

    Infants get finer units: days below 14 days, weeks below one month, months below 2 years;
    years from then on, capped at 090Y.
    """
    if exam < birth:
        return None
    years = exam.year - birth.year - ((exam.month, exam.day) < (birth.month, birth.day))
    months = (exam.year - birth.year) * 12 + exam.month - birth.month - (exam.day < birth.day)
    days = (exam - birth).days
    if years >= 2:
        return f"{min(years, AGE_CAP_YEARS):03d}Y"
    if months >= 1:
        return f"{months:03d}M"
    if days >= 14:
        return f"{days // 7:03d}W"
    return f"{days:03d}D"


def cap_age(value: str) -> str | None:
    """An existing AS value with years capped at 090Y; None if it is not a valid AS value."""
    match = _AS.match(value.strip())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2)
    if unit == "Y" and number >= AGE_CAP_YEARS:
        return f"{AGE_CAP_YEARS:03d}Y"
    return f"{number:03d}{unit}"
