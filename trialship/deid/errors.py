"""Errors raised by the de-identification engine.

They sit on a local base so the engine stays importable on its own; the lead engineer re-parents
`DeidError` onto `trialship.errors.TrialshipError` when the packages are joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trialship.deid.leak import Leak


class DeidError(Exception):
    """Base of every error the de-identification engine raises."""


class ProfileError(DeidError):
    """A profile value is wrong; `key` names the offending TOML key (e.g. ``deid.options``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class LeakError(DeidError):
    """The leak check found original identifying values in an output file (fail closed)."""

    def __init__(self, leaks: Sequence[Leak]) -> None:
        kinds = sorted({leak.kind for leak in leaks})
        super().__init__(f"{len(leaks)} possible leak(s) of {', '.join(kinds)}")
        self.leaks = tuple(leaks)
