"""Imported exams to build discs from: two subjects, two time points, small synthetic files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from tests.integration.exams.exam_samples import PHI, SYSTEM, seed_trial, write_exam
from trialship.app import Runtime
from trialship.registry.models import Trial
from trialship.services.exam_import import import_exams
from trialship.signing import load_or_create_signing_key

NOW = dt.datetime(2024, 2, 1, 12, 0)
TOOLS = ("xorriso", "isoinfo", "pdftotext")
SECOND_MRN = "MRN7730014"


def real_tools() -> dict[str, str]:
    """The real peers; a missing one fails (scripts/test installs them), never skips."""
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(
            f"missing test peers {', '.join(missing)}: install xorriso, genisoimage, "
            "poppler-utils (scripts/test does)"
        )
    return {name: path for name, path in found.items() if path is not None}


def imported_trial(runtime: Runtime, tmp_path: Path) -> Trial:
    """ACM-301 with three de-identified exams: SUBJ-001 at BL and W12, SUBJ-002 at BL."""
    trial = seed_trial(runtime)
    write_exam(tmp_path / "in" / "bl", 3, study_date="20240111")
    write_exam(
        tmp_path / "in" / "w12",
        2,
        study="1.2.826.0.1.3680043.99.31.2",
        study_date="20240403",
        modality="MR",
    )
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        trial = session.merge(trial)
        for folder in ("bl", "w12"):
            import_exams(
                session,
                SYSTEM,
                runtime.vault,
                trial,
                [tmp_path / "in" / folder],
                data_dir=data,
                signing_key=load_or_create_signing_key(data),
                today=runtime.today(),
                now=NOW,
            )
    write_exam(
        tmp_path / "in" / "s2",
        2,
        study="1.2.826.0.1.3680043.99.31.3",
        patient_id=SECOND_MRN,
        issuer=PHI["issuer"],
    )
    with runtime.db.unit_of_work() as session:
        import_exams(
            session,
            SYSTEM,
            runtime.vault,
            session.merge(trial),
            [tmp_path / "in" / "s2"],
            data_dir=data,
            signing_key=load_or_create_signing_key(data),
            today=runtime.today(),
            now=NOW,
            subject_id="SUBJ-002",
            timepoint_id="BL",
        )
    return trial
