"""The completeness matrix: subjects x time points, from the schedule, exams and today."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.registry.models import Exam, ExamState, Subject, TimePoint, Trial
from trialship.schedule import Cell, CellState, cell_state, visit_window
from trialship.services.timepoints import expected_count, list_timepoints


@dataclass(frozen=True)
class Row:
    subject: Subject
    cells: list[Cell]


@dataclass(frozen=True)
class Matrix:
    timepoints: list[TimePoint]
    rows: list[Row]
    today: dt.date

    def totals(self) -> dict[CellState, int]:
        counts = dict.fromkeys(CellState, 0)
        for row in self.rows:
            for cell in row.cells:
                counts[cell.state] += 1
        return counts


def completeness(session: Session, trial: Trial, today: dt.date) -> Matrix:
    timepoints = list_timepoints(session, trial)
    subjects = list(
        session.scalars(
            select(Subject).where(Subject.trial_id == trial.id).order_by(Subject.subject_id)
        )
    )
    exams: dict[tuple[int, int | None], list[dt.date | None]] = defaultdict(list)
    for subject_pk, timepoint_pk, study_date in session.execute(
        select(Exam.subject_pk, Exam.timepoint_pk, Exam.study_date).where(
            Exam.trial_id == trial.id,
            Exam.timepoint_pk.is_not(None),
            Exam.state != ExamState.QUARANTINED,
        )
    ):
        exams[(subject_pk, timepoint_pk)].append(study_date)
    rows = []
    for subject in subjects:
        cells = []
        for tp in timepoints:
            window = (
                visit_window(subject.baseline_date, tp.day_offset, tp.window_minus, tp.window_plus)
                if subject.baseline_date
                else None
            )
            cells.append(
                cell_state(
                    window=window,
                    exam_dates=exams[(subject.id, tp.id)],
                    expected=expected_count(tp),
                    today=today,
                    missing_after_days=trial.missing_after_days,
                )
            )
        rows.append(Row(subject, cells))
    return Matrix(timepoints, rows, today)
