"""Reading plain values out of DICOM headers, and pydicom set up for the de-identifying walk.

Shared by the standalone pipeline (services/deid_files.py) and the registry import
(services/exam_import.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom import config as pydicom_config


def text(value: object) -> str:
    """A header value as stripped text ('' when absent)."""
    return str(value).strip() if value not in (None, "") else ""


def integer(value: object) -> int:
    """A header value as an integer (0 when absent or not a number)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def dicom_date(value: object) -> dt.date | None:
    """A DA value as a date (None when absent or malformed)."""
    raw = text(value)
    try:
        return dt.datetime.strptime(raw[:8], "%Y%m%d").date() if len(raw) >= 8 else None
    except ValueError:
        return None


def skip_validation() -> None:
    """Switch pydicom's per-value validation off in this process.

    The header walk decides what to convert; validating every element read or written would
    cost more than the de-identification itself.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE


@contextmanager
def without_validation() -> Iterator[None]:
    """`skip_validation` for the duration of a block, then pydicom's settings restored."""
    settings = pydicom_config.settings
    saved = (settings.reading_validation_mode, settings.writing_validation_mode)
    skip_validation()
    try:
        yield
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = saved
