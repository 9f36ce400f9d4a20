"""Whole-day date shifting for DA and DT values (PS3.5 6.2), and the per-subject offset.

A shift by whole days changes every date of a subject by the same amount, so intervals between
any two dates or date-times stay exact and TM values need not change.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re

_DA_FULL = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# ACR-NEMA style dates still appear in old files: accept them, write the DICOM form.
_DA_LEGACY = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_DT_COMPONENT = (
    r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
)
_DT_SINGLE = re.compile(_DT_COMPONENT)
_DT_RANGE = re.compile(f"({_DT_COMPONENT})?-({_DT_COMPONENT})?")


def date_offset(secret: bytes, subject_id: str, lo: int, hi: int) -> int:
    """The subject's shift in days, in [lo, hi] and never 0 (a 0 shift would modify nothing).

    HMAC-SHA256 keyed by the trial secret, so the same subject always gets the same shift and the
    shift cannot be recomputed without the secret.
    """
    if lo > hi:
        raise ValueError("lo must not exceed hi")
    choices = [day for day in range(lo, hi + 1) if day != 0]
    if not choices:
        return 0
    digest = hmac.new(secret, b"date-shift\0" + subject_id.encode("utf-8"), hashlib.sha256).digest()
    return choices[int.from_bytes(digest[:8], "big") % len(choices)]


def _shift_date(year: int, month: int, day: int, days: int) -> dt.date:
    return dt.date(year, month, day) + dt.timedelta(days=days)


def shift_da_single(value: str, days: int) -> str | None:
    """Shift one DA value; partial dates (YYYY, YYYYMM) shift their first day. None if malformed."""
    text = value.strip()
    if not text:
        return ""
    match = _DA_FULL.match(text) or _DA_LEGACY.match(text)
    try:
        if match:
            year, month, day = (int(part) for part in match.groups())
            return _shift_date(year, month, day, days).strftime("%Y%m%d")
        if re.fullmatch(r"\d{6}", text):
            return _shift_date(int(text[:4]), int(text[4:]), 1, days).strftime("%Y%m")
        if re.fullmatch(r"\d{4}", text):
            return _shift_date(int(text), 1, 1, days).strftime("%Y")
    except (ValueError, OverflowError):
        return None
    return None


@functools.lru_cache(maxsize=4096)
def shift_da(value: str, days: int) -> str | None:
    """Shift a DA value, including ranges ('A-B', '-B', 'A-'). None if malformed."""
    if "-" not in value:
        return shift_da_single(value, days)
    start, _, end = value.partition("-")
    parts = [shift_da_single(part, days) if part.strip() else "" for part in (start, end)]
    if parts[0] is None or parts[1] is None or not (parts[0] or parts[1]):
        return None
    return f"{parts[0]}-{parts[1]}"


def shift_dt_single(value: str, days: int) -> str | None:
    """Shift one DT value's date; the time, fraction and UTC offset suffix are kept as written."""
    text = value.strip()
    if not text:
        return ""
    if not _DT_SINGLE.fullmatch(text):
        return None
    digits = len(text) - len(text.lstrip("0123456789"))
    try:
        if digits >= 8:
            date = _shift_date(int(text[:4]), int(text[4:6]), int(text[6:8]), days)
            return date.strftime("%Y%m%d") + text[8:]
        if digits >= 6:
            return _shift_date(int(text[:4]), int(text[4:6]), 1, days).strftime("%Y%m") + text[6:]
        return _shift_date(int(text[:4]), 1, 1, days).strftime("%Y") + text[4:]
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def shift_dt(value: str, days: int) -> str | None:
    """Shift a DT value or range ('A-B', '-B', 'A-'). None if malformed.

    A value that parses as one date-time with a negative UTC offset ('20200101-0500') is one value,
    not a range: PS3.5 gives the offset reading precedence.
    """
    text = value.strip()
    if _DT_SINGLE.fullmatch(text) or not text:
        return shift_dt_single(text, days)
    match = _DT_RANGE.fullmatch(text)
    if not match or not (match.group(1) or match.group(2)):
        return None
    start = shift_dt_single(match.group(1) or "", days)
    end = shift_dt_single(match.group(2) or "", days)
    if start is None or end is None:
        return None
    return f"{start}-{end}"
