"""The time point schedule of a trial: visit windows and expected exams."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialship import vr
from trialship.errors import Conflict, NotFound, ValidationError
from trialship.registry.models import ExpectedExam, TimePoint, Trial
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.fields import Spec, apply, get_in_trial, validate

_MODALITY = re.compile(r"^[A-Z0-9_ ]{1,16}$")


def parse_expected(value: object) -> list[dict[str, Any]]:
    """Accept [{"modality", "description_pattern", "count"}] or "CT:CHEST*:1; MR" text."""
    if value is None or value == "":
        return []
    items: Sequence[Any]
    if isinstance(value, str):
        items = []
        for part in value.split(";"):
            if part.strip():
                modality, _, rest = part.strip().partition(":")
                pattern, _, count = rest.partition(":")
                items.append(
                    {"modality": modality, "description_pattern": pattern, "count": count or 1}
                )
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValidationError("must be a list of expected exams", field="expected_exams")
    parsed = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValidationError("each expected exam needs a modality", field="expected_exams")
        modality = str(item.get("modality", "")).strip().upper()
        if not _MODALITY.match(modality):
            raise ValidationError(
                "modality must be a DICOM modality code such as CT or MR",
                field="expected_exams.modality",
            )
        parsed.append(
            {
                "modality": modality,
                "description_pattern": vr.text(
                    "expected_exams.description_pattern", item.get("description_pattern", "")
                ),
                "count": vr.integer(
                    "expected_exams.count", item.get("count", 1), minimum=1, maximum=100
                ),
            }
        )
    return parsed


TIMEPOINT_FIELDS: Spec = {
    "timepoint_id": lambda v: vr.identifier("timepoint_id", v),
    "description": lambda v: vr.text("description", v, vr="ST"),
    "order": lambda v: vr.integer("order", 0 if v in (None, "") else v, minimum=0, maximum=100_000),
    "day_offset": lambda v: vr.integer(
        "day_offset", 0 if v in (None, "") else v, minimum=-3650, maximum=36500
    ),
    "window_minus": lambda v: vr.integer(
        "window_minus", 0 if v in (None, "") else v, minimum=-3650, maximum=3650
    ),
    "window_plus": lambda v: vr.integer(
        "window_plus", 0 if v in (None, "") else v, minimum=-3650, maximum=3650
    ),
    "expected_exams": parse_expected,
}


def _check_window(values: Mapping[str, Any]) -> None:
    # The window runs from offset - minus to offset + plus; it must not end before it starts.
    if values["window_plus"] + values["window_minus"] < 0:
        raise ValidationError(
            "the window ends before it starts (minus + plus must be >= 0)", field="window_plus"
        )


def list_timepoints(session: Session, trial: Trial) -> list[TimePoint]:
    return list(
        session.scalars(
            select(TimePoint)
            .where(TimePoint.trial_id == trial.id)
            .order_by(TimePoint.order, TimePoint.day_offset, TimePoint.timepoint_id)
        )
    )


def add_timepoint(
    session: Session, actor: Actor, trial: Trial, data: Mapping[str, object], today: dt.date
) -> TimePoint:
    require(session, actor, trial, Capability.REGISTRY, today)
    raw = dict(data)
    if raw.get("order") in (None, ""):
        raw["order"] = (
            session.scalar(select(func.max(TimePoint.order)).where(TimePoint.trial_id == trial.id))
            or 0
        ) + 1
    values = validate(TIMEPOINT_FIELDS, raw)
    _check_window(values)
    if session.scalar(
        select(TimePoint.id).where(
            TimePoint.trial_id == trial.id, TimePoint.timepoint_id == values["timepoint_id"]
        )
    ):
        raise Conflict(
            f"time point {values['timepoint_id']} exists already in this trial",
            field="timepoint_id",
        )
    expected = values.pop("expected_exams")
    timepoint = TimePoint(trial_id=trial.id, **values)
    timepoint.expected_exams = [ExpectedExam(**item) for item in expected]
    session.add(timepoint)
    session.flush()
    audit.record(
        session,
        actor,
        "timepoint.create",
        object_type="timepoint",
        object_id=timepoint.id,
        trial_id=trial.id,
        details={"timepoint_id": timepoint.timepoint_id},
    )
    return timepoint


def update_timepoint(
    session: Session,
    actor: Actor,
    timepoint: TimePoint,
    data: Mapping[str, object],
    today: dt.date,
) -> TimePoint:
    trial = timepoint.trial
    require(session, actor, trial, Capability.REGISTRY, today)
    values = validate(TIMEPOINT_FIELDS, data, partial=True)
    merged = {"window_minus": timepoint.window_minus, "window_plus": timepoint.window_plus}
    merged.update({k: v for k, v in values.items() if k in merged})
    _check_window(merged)
    new_id = values.get("timepoint_id", timepoint.timepoint_id)
    if new_id != timepoint.timepoint_id and session.scalar(
        select(TimePoint.id).where(TimePoint.trial_id == trial.id, TimePoint.timepoint_id == new_id)
    ):
        raise Conflict(f"time point {new_id} exists already in this trial", field="timepoint_id")
    expected = values.pop("expected_exams", None)
    changed = apply(timepoint, values)
    if expected is not None:
        timepoint.expected_exams = [ExpectedExam(**item) for item in expected]
        changed["expected_exams"] = True
    if changed:
        audit.record(
            session,
            actor,
            "timepoint.update",
            object_type="timepoint",
            object_id=timepoint.id,
            trial_id=trial.id,
            details={"fields": sorted(changed)},
        )
    return timepoint


def get_timepoint(session: Session, trial: Trial, timepoint_pk: int) -> TimePoint:
    return get_in_trial(session, TimePoint, trial, timepoint_pk, "time point")


def timepoint_by_code(session: Session, trial: Trial, timepoint_id: str) -> TimePoint:
    timepoint = session.scalar(
        select(TimePoint).where(
            TimePoint.trial_id == trial.id, TimePoint.timepoint_id == timepoint_id
        )
    )
    if timepoint is None:
        raise NotFound(
            f"no time point {timepoint_id!r} in trial {trial.protocol_id}", field="timepoint_id"
        )
    return timepoint


def expected_count(timepoint: TimePoint) -> int:
    return sum(e.count for e in timepoint.expected_exams) or 1
