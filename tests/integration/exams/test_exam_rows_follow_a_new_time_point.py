"""Confirming another time point rewrites the files; the exam and series rows then show what
the files say (a replace template may hold the time point)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
from sqlalchemy import select

from tests.integration.exams.exam_samples import SYSTEM, import_files, seed_trial, write_exam
from trialship.app import Runtime
from trialship.registry.imaging import Series
from trialship.registry.models import Exam
from trialship.services import exams
from trialship.signing import load_or_create_signing_key

PROFILE = (
    '[deid]\noptions = ["clean_descriptors"]\n[deid.replace]\n'
    'StudyDescription = "{timepoint_id} of {subject_id}"\nSeriesDescription = "{timepoint_id}"\n'
)


def test_descriptions_follow_the_confirmed_time_point(runtime: Runtime, tmp_path: Path) -> None:
    trial = seed_trial(runtime)
    with runtime.db.unit_of_work() as session:
        trial.deid_profile = PROFILE
        session.merge(trial)
    write_exam(tmp_path / "in", 1, study_date="20240301")
    import_files(runtime, trial, tmp_path / "in")
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        exam = session.scalars(select(Exam)).one()
        before = exam.description
        baseline = next(tp for tp in exam.subject.trial.timepoints if tp.timepoint_id == "BL")
        exams.confirm_timepoint(
            session,
            SYSTEM,
            runtime.vault,
            exam,
            baseline,
            today=runtime.today(),
            data_dir=data,
            signing_key=load_or_create_signing_key(data),
            now=dt.datetime(2024, 3, 2, 12, 0),
        )
    with runtime.db.unit_of_work() as session:
        exam = session.scalars(select(Exam)).one()
        (series,) = session.scalars(select(Series))
        assert before != "BL of SUBJ-001"
        assert exam.description == "BL of SUBJ-001" and series.description == "BL"
    (output,) = list((data / "exams").rglob("*.dcm"))
    written = pydicom.dcmread(output)
    assert (written.StudyDescription, written.SeriesDescription) == ("BL of SUBJ-001", "BL")
