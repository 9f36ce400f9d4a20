"""The per-file de-identification report: which attribute got which action, never its value."""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any


class ReportAction(enum.Enum):
    # Members are singletons compared by identity: hashed by identity too (in C), not by name
    # (in Python) as Enum does; every report entry is looked up by its action.
    __hash__ = object.__hash__

    REMOVED = "removed"
    EMPTIED = "emptied"
    REPLACED = "replaced"
    REMAPPED = "remapped"
    SHIFTED = "shifted"
    CLEANED = "cleaned"
    KEPT = "kept"
    ADDED = "added"


@dataclass(frozen=True)
class ReportEntry:
    """One attribute's fate. `path` locates it inside sequences, e.g.
    ``ReferencedSeriesSequence[0].ReferencedSOPInstanceUID``; `detail` says why, with no PHI."""

    tag: str
    keyword: str
    path: str
    action: ReportAction
    detail: str = ""
    row: tuple[str, str, str, str, str] = field(init=False, repr=False, compare=False)
    """(tag, keyword, path, action, detail) as plain text: what a run collects of each file.
    Built once per entry (entries are shared, `_entry`), one object that pickle and a report's
    lookups then meet again and again."""

    def __post_init__(self) -> None:
        row = (self.tag, self.keyword, self.path, self.action.value, self.detail)
        object.__setattr__(self, "row", row)

    def to_dict(self) -> dict[str, str]:
        return {
            "tag": self.tag,
            "keyword": self.keyword,
            "path": self.path,
            "action": self.action.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DeidReport:
    profile_name: str
    profile_hash: str
    options: tuple[str, ...]
    entries: tuple[ReportEntry, ...]
    needs_pixel_review: bool
    warnings: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        return action_counts(entry.row for entry in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": {"name": self.profile_name, "hash": self.profile_hash},
            "options": list(self.options),
            "needs_pixel_review": self.needs_pixel_review,
            "warnings": list(self.warnings),
            "counts": self.counts(),
            "entries": [entry.to_dict() for entry in self.entries],
        }


def action_counts(rows: Iterable[tuple[str, str, str, str, str]]) -> dict[str, int]:
    """How many entries of each action (`ReportEntry.row`s), by action name."""
    return dict(sorted(Counter(map(_action, rows)).items()))  # (map: the loop runs in C)


_action = itemgetter(3)


@functools.lru_cache(maxsize=4096)
def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def tag_text(tag: int) -> str:
    return _tag_text(int(tag))  # int: a BaseTag key would compare in Python on every lookup


def report_entry(
    tag: int, keyword: str, path: str, action: ReportAction, detail: str
) -> ReportEntry:
    """The entry `ReportBuilder.add` adds."""
    return _entry(int(tag), keyword, path, action, detail)


@functools.lru_cache(maxsize=8192)
def _entry(tag: int, keyword: str, path: str, action: ReportAction, detail: str) -> ReportEntry:
    # Files of one series report the same entries: built once (entries are frozen, so shared;
    # they hold attribute names and actions, never values).
    return ReportEntry(_tag_text(tag), keyword, path, action, detail)


class ReportBuilder:
    """Collects entries during one run (mutable, private to the engine)."""

    def __init__(self) -> None:
        self.entries: list[ReportEntry] = []
        self.warnings: list[str] = []

    def add(
        self, tag: int, keyword: str, path: str, action: ReportAction, detail: str = ""
    ) -> None:
        self.entries.append(_entry(int(tag), keyword, path, action, detail))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def amend_last(self, detail: str) -> None:
        """Replace the detail of the latest entry (used when an action falls back to another)."""
        self.entries[-1] = replace(self.entries[-1], detail=detail)
