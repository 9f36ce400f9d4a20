"""A trial's UID secret and date shift range key every new UID and date shift: once exams are
de-identified with them, another secret or range is refused (the rest of a profile still
imports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.exams.exam_samples import SYSTEM, import_files, seed_trial, write_exam
from trialship.app import Runtime
from trialship.errors import ValidationError
from trialship.registry.models import Trial
from trialship.services import trial_profile, trials

PROFILE = '[trial]\nprotocol_id = "{protocol}"\n[deid]\noptions = ["clean_descriptors"]\n'


def _adopt(runtime: Runtime, trial: Trial, text: str) -> str:
    with runtime.db.unit_of_work() as session:
        stored = session.merge(trial)
        trial_profile.import_profile(session, SYSTEM, runtime.vault, stored, text, runtime.today())
        return trial_profile.trial_secret(runtime.vault, stored)


def test_a_new_secret_is_refused_once_exams_exist(runtime: Runtime, tmp_path: Path) -> None:
    trial = seed_trial(runtime)
    profile = PROFILE.format(protocol=trial.protocol_id)
    before_exams = _adopt(runtime, trial, profile + f'uid_secret = "{"a" * 40}"\n')
    assert before_exams == "a" * 40  # no exam yet: adopted
    write_exam(tmp_path / "in", 1)
    import_files(runtime, trial, tmp_path / "in")
    with pytest.raises(ValidationError) as refused:
        _adopt(runtime, trial, profile + f'uid_secret = "{"b" * 40}"\n')
    assert refused.value.field == "deid.uid_secret"
    assert "1 exam(s)" in refused.value.message
    # The same secret, or none, still imports the rest of the profile.
    assert _adopt(runtime, trial, profile + f'uid_secret = "{"a" * 40}"\n') == "a" * 40
    assert _adopt(runtime, trial, profile) == "a" * 40


def test_another_date_shift_range_is_refused_once_exams_exist(
    runtime: Runtime, tmp_path: Path
) -> None:
    trial = seed_trial(runtime)
    shifted = '[deid]\noptions = ["retain_longitudinal_modified_dates"]\ndate_shift_days = [{r}]\n'
    with runtime.db.unit_of_work() as session:  # no exam yet: any range
        trial = trials.update_trial(
            session,
            SYSTEM,
            session.merge(trial),
            {"deid_profile": shifted.format(r="-90, -60")},
            runtime.today(),
        )
    write_exam(tmp_path / "in", 1)
    import_files(runtime, trial, tmp_path / "in")
    for change in (
        lambda session, stored: trials.update_trial(
            session,
            SYSTEM,
            stored,
            {"deid_profile": shifted.format(r="-50, -40")},
            runtime.today(),
        ),
        lambda session, stored: trial_profile.import_profile(
            session,
            SYSTEM,
            runtime.vault,
            stored,
            PROFILE.format(protocol=trial.protocol_id) + "date_shift_days = [-50, -40]\n",
            runtime.today(),
        ),
    ):
        with pytest.raises(ValidationError) as refused, runtime.db.unit_of_work() as session:
            change(session, session.merge(trial))
        assert refused.value.field == "deid.date_shift_days"
        assert "within [-90, -60] days" in refused.value.message
    with runtime.db.unit_of_work() as session:  # the same range, with another option: fine
        again = shifted.format(r="-90, -60").replace('"]', '", "clean_descriptors"]')
        trials.update_trial(
            session, SYSTEM, session.merge(trial), {"deid_profile": again}, runtime.today()
        )
