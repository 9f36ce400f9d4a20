"""Visit windows and cell states: the arithmetic coordinators rely on."""

from __future__ import annotations

import datetime as dt

import pytest

from trialship.schedule import CellState, cell_state, visit_window

BASE = dt.date(2026, 1, 1)


def test_window_is_counted_from_baseline_with_minus_and_plus_days() -> None:
    window = visit_window(BASE, 84, 7, 14)
    assert window.target == dt.date(2026, 3, 26)
    assert window.start == dt.date(2026, 3, 19)
    assert window.end == dt.date(2026, 4, 9)
    assert window.contains(window.start) and window.contains(window.end)
    assert not window.contains(window.end + dt.timedelta(days=1))


def test_window_crossing_a_leap_day() -> None:
    window = visit_window(dt.date(2028, 2, 20), 10, 0, 0)
    assert window.target == dt.date(2028, 3, 1)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 3, 18), CellState.NOT_DUE),
        (dt.date(2026, 3, 19), CellState.DUE),
        (dt.date(2026, 4, 9), CellState.DUE),
        (dt.date(2026, 4, 10), CellState.LATE),
        (dt.date(2026, 5, 9), CellState.LATE),
        (dt.date(2026, 5, 10), CellState.MISSING),
    ],
)
def test_unreceived_cell_moves_from_not_due_to_missing(today: dt.date, expected: CellState) -> None:
    window = visit_window(BASE, 84, 7, 14)
    cell = cell_state(window=window, exam_dates=[], expected=1, today=today, missing_after_days=30)
    assert cell.state == expected


def test_received_exam_wins_whatever_the_date_and_notes_out_of_window() -> None:
    window = visit_window(BASE, 84, 7, 14)
    cell = cell_state(
        window=window,
        exam_dates=[dt.date(2026, 6, 1), None],
        expected=2,
        today=dt.date(2027, 1, 1),
        missing_after_days=30,
    )
    assert cell.state == CellState.RECEIVED
    assert cell.received == 2 and cell.out_of_window == 1
    assert "1 outside the window" in cell.title


def test_subject_without_baseline_is_never_due() -> None:
    cell = cell_state(
        window=None, exam_dates=[], expected=1, today=dt.date(2030, 1, 1), missing_after_days=0
    )
    assert cell.state == CellState.NOT_DUE
    assert "no baseline date" in cell.title


def test_labels_read_as_the_matrix_shows_them() -> None:
    assert CellState.NOT_DUE.label == "not yet due"
    assert CellState.MISSING.label == "missing"
