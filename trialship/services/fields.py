"""Validate incoming field values (form, JSON or CLI) against a spec, naming the bad field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trialship.errors import ValidationError

Spec = Mapping[str, Callable[[object], Any]]


def validate(spec: Spec, data: Mapping[str, object], *, partial: bool = False) -> dict[str, Any]:
    """Return the cleaned values of `data`. Unknown keys are errors; with `partial`, absent
    keys are left out (an update), otherwise each validator sees None for an absent key."""
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ValidationError("is not a known field", field=unknown[0])
    cleaned: dict[str, Any] = {}
    for name, check in spec.items():
        if name in data:
            cleaned[name] = check(data[name])
        elif not partial:
            cleaned[name] = check(None)
    return cleaned


def apply(obj: object, values: Mapping[str, Any]) -> dict[str, bool]:
    """Set the attributes; return which ones changed (for the audit trail, never the values)."""
    changed = {}
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed[name] = True
    return changed
