"""The schedule (time points) and the completeness matrix."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient

from tests.conftest import SYSTEM, csrf_token
from trialship.registry.models import Exam, Subject, TimePoint
from trialship.services import subjects, timepoints


def post(client: FlaskClient, path: str, data: dict[str, str]):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **data})


@pytest.fixture
def trial(make_trial):
    return make_trial("ONC-7")


def test_time_points_are_added_and_listed(admin_client, trial) -> None:
    form = admin_client.get(f"/trials/{trial.id}/timepoints/new").get_data(as_text=True)
    assert 'id="timepoint-form"' in form and 'name="expected_exams"' in form
    response = post(
        admin_client,
        f"/trials/{trial.id}/timepoints/new",
        {
            "timepoint_id": "W12",
            "description": "Week 12",
            "day_offset": "84",
            "window_minus": "7",
            "window_plus": "14",
            "expected_exams": "CT:CHEST*:1; mr",
        },
    )
    assert response.status_code == 302
    page = admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)
    table = page.split('id="timepoints-table"', 1)[1].split("</table>", 1)[0]
    assert "W12" in table and "Week 12" in table and "84" in table
    assert "\u22127 / +14 days" in table
    assert "1\u00d7 CT \u201cCHEST*\u201d; 1\u00d7 MR" in table


def test_editing_a_time_point_shows_its_expected_exams_as_text(admin_client, trial, runtime):
    post(
        admin_client,
        f"/trials/{trial.id}/timepoints/new",
        {"timepoint_id": "BL", "expected_exams": "CT:CHEST*:2; MR"},
    )
    with runtime.db.unit_of_work() as session:
        pk = session.query(TimePoint.id).filter_by(timepoint_id="BL").scalar()
    path = f"/trials/{trial.id}/timepoints/{pk}/edit"
    assert 'value="CT:CHEST*:2; MR::1"' in admin_client.get(path).get_data(as_text=True)
    response = post(
        admin_client, path, {"timepoint_id": "BASELINE", "window_plus": "3", "expected_exams": ""}
    )
    assert response.status_code == 302
    with runtime.db.unit_of_work() as session:
        tp = session.get(TimePoint, pk)
        assert (tp.timepoint_id, tp.window_plus, tp.expected_exams) == ("BASELINE", 3, [])


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"window_minus": "-10", "window_plus": "5"}, 422, "window_plus: the window ends before"),
        ({"day_offset": "soon"}, 422, "day_offset: must be a whole number"),
        ({"expected_exams": "C-T:X:1"}, 422, "expected_exams.modality: modality must be"),
        ({"expected_exams": "CT:X:0"}, 422, "expected_exams.count: must be at least 1"),
        ({"timepoint_id": "BL"}, 409, "timepoint_id: time point BL exists already"),
    ],
    ids=["window-ends-before-start", "offset", "modality", "count", "duplicate"],
)
def test_bad_time_point_values_name_the_field(admin_client, trial, data, status, message):
    post(admin_client, f"/trials/{trial.id}/timepoints/new", {"timepoint_id": "BL"})
    response = post(
        admin_client,
        f"/trials/{trial.id}/timepoints/new",
        {"timepoint_id": "W4", "description": "Week 4", **data},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert message in page
    assert 'value="Week 4"' in page and 'aria-invalid="true"' in page
    page = admin_client.get(f"/trials/{trial.id}").get_data(as_text=True)
    assert "Week 4" not in page


def test_completeness_matrix_colours_each_cell_by_the_date(admin_client, trial, runtime):
    today = runtime.today()
    with runtime.db.unit_of_work() as session:
        t = session.merge(trial)
        vault = runtime.vault
        for tp_id, offset in (("BL", 0), ("D100", 100), ("D200", 200), ("D90", 90)):
            timepoints.add_timepoint(
                session,
                SYSTEM,
                t,
                {"timepoint_id": tp_id, "day_offset": offset, "window_minus": 0, "window_plus": 5},
                today,
            )
        subjects.add_subject(
            session,
            SYSTEM,
            vault,
            t,
            {"subject_id": "S-1", "baseline_date": today - dt.timedelta(days=100)},
            today,
        )
        subjects.add_subject(session, SYSTEM, vault, t, {"subject_id": "S-2"}, today)
        session.flush()
        s1 = session.query(Subject).filter_by(subject_id="S-1").one()
        d90 = session.query(TimePoint).filter_by(timepoint_id="D90").one()
        session.add(Exam(trial_id=t.id, subject_pk=s1.id, timepoint_pk=d90.id, modality="CT"))

    for path in (f"/trials/{trial.id}/completeness", f"/trials/{trial.id}"):
        page = admin_client.get(path).get_data(as_text=True)
        assert page.count('id="completeness"') == 1
        assert f'As of <strong id="completeness-date">{today.isoformat()}</strong>' in page
        cells = re.findall(
            r'data-state="(\w+)" data-subject="([^"]+)" data-timepoint="(\w+)"', page
        )
        states = {(subject, tp): state for state, subject, tp in cells}
        # Time points are ordered as added: BL, D100, D200, D90.
        assert states == {
            ("S-1", "BL"): "missing",  # window closed 95 days ago, grace 30 days over
            ("S-1", "D100"): "due",
            ("S-1", "D200"): "not_due",
            ("S-1", "D90"): "received",
            ("S-2", "BL"): "not_due",  # no baseline date
            ("S-2", "D100"): "not_due",
            ("S-2", "D200"): "not_due",
            ("S-2", "D90"): "not_due",
        }
        assert 'title="missing; window' in page and "no baseline date" in page
        assert '<span class="total" data-total="not_due">5</span>' in page
        assert '<span class="total" data-total="missing">1</span>' in page


def test_completeness_with_no_time_points_or_subjects(admin_client, trial) -> None:
    page = admin_client.get(f"/trials/{trial.id}/completeness").get_data(as_text=True)
    assert "No time points yet" in page and 'id="completeness-legend"' in page
