"""Where the shipped data folders live: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `name` (templates, label_templates, migrations).

    A wheel carries them under ``trialship/_data``; a source checkout (editable install) keeps
    them at the top level beside ``trialship/``.
    """
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"trialship data folder {name!r} is missing from this installation")
