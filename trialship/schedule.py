"""Visit windows and the completeness of a subject's schedule. Pure: dates in, states out."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class CellState(enum.StrEnum):
    """The state of one subject x time point cell of the completeness matrix."""

    NOT_DUE = "not_due"
    """The visit window has not opened yet (or the subject has no baseline date)."""
    DUE = "due"
    """The window is open and nothing has been received."""
    RECEIVED = "received"
    """At least one exam is recorded for this time point."""
    LATE = "late"
    """The window closed, nothing received, still within the trial's grace period."""
    MISSING = "missing"
    """Nothing received and the grace period after the window is over."""

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").replace("not due", "not yet due")


@dataclass(frozen=True)
class Window:
    start: dt.date
    target: dt.date
    end: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def visit_window(baseline: dt.date, day_offset: int, minus: int, plus: int) -> Window:
    """The visit window of a time point for a subject with this baseline date."""
    target = baseline + dt.timedelta(days=day_offset)
    return Window(target - dt.timedelta(days=minus), target, target + dt.timedelta(days=plus))


@dataclass(frozen=True)
class Cell:
    state: CellState
    window: Window | None
    received: int
    expected: int
    out_of_window: int = 0

    @property
    def title(self) -> str:
        parts = [self.state.label]
        if self.window:
            parts.append(f"window {self.window.start.isoformat()} to {self.window.end.isoformat()}")
        else:
            parts.append("no baseline date")
        if self.received:
            parts.append(f"{self.received} of {self.expected} exam(s) received")
        if self.out_of_window:
            parts.append(f"{self.out_of_window} outside the window")
        return "; ".join(parts)


def cell_state(
    *,
    window: Window | None,
    exam_dates: list[dt.date | None],
    expected: int,
    today: dt.date,
    missing_after_days: int,
) -> Cell:
    """Classify one cell. Exams count whatever their date; dates outside the window are noted."""
    received = len(exam_dates)
    outside = sum(1 for d in exam_dates if d is not None and window and not window.contains(d))
    if received:
        state = CellState.RECEIVED
    elif window is None or today < window.start:
        state = CellState.NOT_DUE
    elif today <= window.end:
        state = CellState.DUE
    elif today <= window.end + dt.timedelta(days=missing_after_days):
        state = CellState.LATE
    else:
        state = CellState.MISSING
    return Cell(state, window, received, max(expected, 1), outside)
