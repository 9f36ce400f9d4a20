"""What de-identification did to each attribute of each file of an exam (tag, sequence path,
action, why; never a value), as the engine reported it at import or at the last rewrite."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.registry.imaging import AttributeReport, Instance, Series
from trialship.registry.models import Exam
from trialship.services.authz import Actor, Capability, require
from trialship.services.exam_import import EXAMS_DIR


def attribute_reports(session: Session, actor: Actor, exam: Exam, today: dt.date) -> dict[str, Any]:
    """{"files": [{"path", "sop_instance_uid", "report"}], "reports": [[entry, ...], ...]}:
    each file's report is an index into "reports" (files alike share one); paths are the
    files' in the exam's folder and in its receipt. A file imported before reports were kept
    has none (its "report" is null)."""
    require(session, actor, exam.subject.trial, Capability.READ, today)
    prefix = f"{EXAMS_DIR}/{exam.trial_id}/{exam.id}/"
    rows = session.execute(
        select(
            Instance.path, Instance.sop_instance_uid, AttributeReport.id, AttributeReport.entries
        )
        .join(Series, Series.id == Instance.series_pk)
        .outerjoin(AttributeReport, AttributeReport.id == Instance.attribute_report_pk)
        .where(Series.exam_pk == exam.id)
        .order_by(Instance.path)
    )
    index: dict[int, int] = {}
    reports: list[list[dict[str, str]]] = []
    files: list[dict[str, Any]] = []
    for path, uid, report_pk, entries in rows:
        position = None
        if report_pk is not None:
            if report_pk not in index:
                index[report_pk] = len(reports)
                reports.append(json.loads(entries))
            position = index[report_pk]
        files.append(
            {"path": path.removeprefix(prefix), "sop_instance_uid": uid, "report": position}
        )
    return {"exam": exam.id, "files": files, "reports": reports}
