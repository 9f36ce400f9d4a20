"""The JSON shapes the API and the command line both give (`trialship exam show --json` is
the API's GET exam): dates as ISO text (times in UTC, with the offset), enums as their values.
Never an original value."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from trialship.registry.imaging import Series
from trialship.registry.models import Exam

Json = dict[str, Any]


def iso(value: dt.date | dt.datetime | None) -> str | None:
    """A date as YYYY-MM-DD; a time as RFC 3339 with its offset (rows hold naive UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat()


def enum_value(value: enum.Enum | str | None) -> str | None:
    if value is None:
        return None
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


def exam(obj: Exam, series: list[Series] | None = None) -> Json:
    """An exam: subject ID, time point, de-identified study UID; never an original value."""
    data: Json = {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "subject_id": obj.subject.subject_id,
        "timepoint_id": obj.timepoint.timepoint_id if obj.timepoint else None,
        "timepoint_confirmed": bool(obj.timepoint_confirmed),
        "study_date": iso(obj.study_date),
        "modality": obj.modality,
        "description": obj.description,
        "study_instance_uid": obj.study_instance_uid,
        "state": enum_value(obj.state),
        "file_count": obj.file_count,
        "total_bytes": obj.total_bytes,
        "needs_pixel_review": bool(obj.needs_pixel_review),
        "pixel_reviewed_at": iso(obj.pixel_reviewed_at),
        "has_receipt": bool(obj.receipt),
        "created_at": iso(obj.created_at),
    }
    if series is not None:
        data["series"] = [
            {
                "series_instance_uid": s.series_instance_uid,
                "series_number": s.series_number,
                "modality": s.modality,
                "description": s.description,
                "instances": len(s.instances),
            }
            for s in series
        ]
    return data
