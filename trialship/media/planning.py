"""Put exams on as few discs as the chosen policy allows. Pure: values in, a plan out.

Packing is first-fit-decreasing on the sector estimate of `capacity.exam_sectors`: simple,
deterministic, and within 11/9 OPT + 6/9 discs, which is below one extra disc for the sets a
research office burns. An exam is never split across discs, so a sponsor can load any disc alone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from trialship.media.capacity import (
    ISO_FIXED_SECTORS,
    PREFERENCE,
    README_ALLOWANCE_SECTORS,
    SECTOR,
    ExamSize,
    Medium,
    exam_sectors,
)
from trialship.media.errors import PlanError

# Everything on a disc that is not an exam (the margin is headroom, not use).
FIXED_SECTORS = ISO_FIXED_SECTORS + README_ALLOWANCE_SECTORS


class Policy(enum.Enum):
    """How exams are grouped before packing; groups never share a disc."""

    PACK = "pack"
    """Fewest discs overall; any exams may share a disc."""
    SUBJECT = "subject"
    """One disc group per subject (a sponsor often files discs by subject)."""
    TIMEPOINT = "timepoint"
    """One disc group per time point (a read campaign per visit)."""
    EXAM = "exam"
    """One disc per exam."""


@dataclass(frozen=True)
class PlannedDisc:
    """One disc of a plan. `index` counts from 1; `group` names the subject/time point/exam."""

    index: int
    medium: Medium
    exams: tuple[ExamSize, ...]
    sectors_used: int
    fill_fraction: float
    group: str = ""


@dataclass(frozen=True)
class DiscPlan:
    discs: tuple[PlannedDisc, ...]

    @property
    def medium(self) -> Medium:
        return self.discs[0].medium


def plan_discs(
    exams: Iterable[ExamSize],
    *,
    policy: Policy | str = Policy.PACK,
    media: Medium | str = "auto",
    allowed: Sequence[Medium] = PREFERENCE,
) -> DiscPlan:
    """Plan discs for `exams`.

    Parameters
    ----------
    policy
        A `Policy` or its value ("pack", "subject", "timepoint", "exam").
    media
        A fixed `Medium` (or its key, "cd80"), or "auto": the allowed medium needing the
        fewest discs, the smaller medium on a tie (so everything on one CD gives a CD).
    allowed
        Media the office can burn; "auto" chooses among these only.

    Raises
    ------
    PlanError
        No exams, a duplicate exam key, or an exam larger than the largest usable medium.
    """
    exam_list = list(exams)
    if not exam_list:
        raise PlanError("no exams to put on disc")
    _reject_duplicates(exam_list)
    policy = Policy(policy)
    costs = {exam.exam_key: exam_sectors(exam) for exam in exam_list}
    groups = _group(exam_list, policy)
    if isinstance(media, str) and media != "auto":
        try:
            media = Medium.from_key(media)
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
    candidates = [media] if isinstance(media, Medium) else _ordered(allowed)
    if not candidates:
        raise PlanError("no medium allowed")
    largest = max(candidates, key=lambda m: m.usable_sectors)
    for exam in exam_list:
        if costs[exam.exam_key] > largest.usable_sectors:
            raise PlanError(
                f"exam {exam.exam_key} is {exam.megabytes:.1f} MB and does not fit on a "
                f"{largest.label} ({largest.usable_sectors * SECTOR / 1_000_000:.1f} MB usable)"
            )
    best: list[PlannedDisc] | None = None
    for medium in candidates:
        if max(costs.values()) > medium.usable_sectors:
            continue
        discs = _pack_groups(groups, medium, costs.__getitem__)
        # Candidates are in preference order, so a strict "<" keeps the smaller medium on a tie.
        if best is None or len(discs) < len(best):
            best = discs
    assert best is not None  # the largest candidate always fits, checked above
    return DiscPlan(discs=tuple(best))


def _reject_duplicates(exams: list[ExamSize]) -> None:
    seen: set[str] = set()
    for exam in exams:
        if exam.exam_key in seen:
            raise PlanError(f"exam {exam.exam_key} is listed twice")
        seen.add(exam.exam_key)


def _ordered(allowed: Sequence[Medium]) -> list[Medium]:
    return [m for m in PREFERENCE if m in allowed]


def _group(exams: list[ExamSize], policy: Policy) -> list[tuple[str, list[ExamSize]]]:
    key: Callable[[ExamSize], str]
    if policy is Policy.PACK:
        return [("", exams)]
    if policy is Policy.SUBJECT:
        key = lambda e: e.subject  # noqa: E731
    elif policy is Policy.TIMEPOINT:
        key = lambda e: e.timepoint  # noqa: E731
    else:
        key = lambda e: e.exam_key  # noqa: E731
    groups: dict[str, list[ExamSize]] = {}
    for exam in exams:
        groups.setdefault(key(exam), []).append(exam)
    return sorted(groups.items())


def _pack_groups(
    groups: list[tuple[str, list[ExamSize]]], medium: Medium, cost: Callable[[str], int]
) -> list[PlannedDisc]:
    discs: list[PlannedDisc] = []
    for name, members in groups:
        for bin_exams in first_fit_decreasing(members, medium.usable_sectors, cost):
            used = sum(cost(e.exam_key) for e in bin_exams) + FIXED_SECTORS
            ordered = tuple(sorted(bin_exams, key=lambda e: (e.subject, e.timepoint, e.exam_key)))
            discs.append(
                PlannedDisc(
                    index=len(discs) + 1,
                    medium=medium,
                    exams=ordered,
                    sectors_used=used,
                    fill_fraction=used / medium.sectors,
                    group=name,
                )
            )
    return discs


def first_fit_decreasing(
    exams: Sequence[ExamSize], capacity: int, cost: Callable[[str], int]
) -> list[list[ExamSize]]:
    """Bins of exams, each bin's cost at most `capacity`. Ties in size break on the exam key so
    the same input always gives the same discs."""
    order = sorted(exams, key=lambda e: (-cost(e.exam_key), e.exam_key))
    bins: list[list[ExamSize]] = []
    free: list[int] = []
    for exam in order:
        need = cost(exam.exam_key)
        for i, space in enumerate(free):
            if need <= space:
                bins[i].append(exam)
                free[i] -= need
                break
        else:
            bins.append([exam])
            free.append(capacity - need)
    return bins
