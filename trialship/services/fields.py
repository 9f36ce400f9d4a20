"""Field values from forms, JSON or the CLI, validated against a spec (naming the bad field);
and rows fetched by id only within their trial."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from trialship.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from trialship.registry.models import Trial

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


class _InTrial(Protocol):
    trial_id: Any


RowT = TypeVar("RowT", bound=_InTrial)


def get_in_trial(session: Session, model: type[RowT], trial: Trial, pk: int, what: str) -> RowT:
    """The row `pk` of `model` if it belongs to `trial`; NotFound otherwise (another trial's
    row is as absent as a missing one)."""
    row = session.get(model, pk)
    if row is None or row.trial_id != trial.id:
        raise NotFound(f"no {what} {pk} in this trial")
    return row
