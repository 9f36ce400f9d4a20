"""Each imported file keeps what de-identification did to each of its attributes (never a
value); files alike share one stored report."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from tests.integration.exams.exam_samples import PHI, SYSTEM, import_files, seed_trial, write_exam
from trialship.app import Runtime
from trialship.registry.imaging import AttributeReport
from trialship.registry.models import Exam
from trialship.services.exam_reports import attribute_reports


def test_an_exams_files_have_their_attribute_reports(runtime: Runtime, tmp_path: Path) -> None:
    trial = seed_trial(runtime)
    write_exam(tmp_path / "in", 3)
    import_files(runtime, trial, tmp_path / "in")
    with runtime.db.unit_of_work() as session:
        exam = session.scalars(select(Exam)).one()
        found = attribute_reports(session, SYSTEM, exam, runtime.today())
        stored = session.scalar(select(func.count(AttributeReport.id)))
    assert [f["report"] for f in found["files"]] == [0, 0, 0]
    assert stored == 1  # the three files are alike: one report
    assert all(f["path"].endswith(".dcm") and "/" in f["path"] for f in found["files"])
    (entries,) = found["reports"]
    by_keyword = {entry["keyword"]: entry for entry in entries}
    assert by_keyword["PatientName"]["action"] == "replaced"
    assert by_keyword["StudyInstanceUID"]["action"] == "remapped"
    assert set(entries[0]) == {"tag", "keyword", "path", "action", "detail"}
    text = json.dumps(found)
    assert all(str(value) not in text for value in PHI.values())
