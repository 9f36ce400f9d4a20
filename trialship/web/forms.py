"""Plain HTML forms: the services validate, the view shows their error beside the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import render_template, request

from trialship.errors import TrialshipError
from trialship.web.context import commit, db


def form_values(names: Iterable[str], *, checkboxes: Iterable[str] = ()) -> dict[str, Any]:
    """The submitted values of the named fields (checkboxes absent from a form mean off)."""
    values: dict[str, Any] = {n: request.form[n] for n in names if n in request.form}
    for name in checkboxes:
        values[name] = name in request.form
    return values


def save_or_rerender(
    action: Callable[[], Any], template: str, **context: Any
) -> tuple[Any, str | tuple[str, int] | None]:
    """Run a service call and commit; on a TrialshipError re-render the form with the error.

    Returns (result, None) on success, or (None, response) to return from the view.
    """
    try:
        result = action()
    except TrialshipError as exc:
        # Nothing half-saved: drop whatever the service flushed before it refused.
        db().rollback()
        context.setdefault("values", request.form)
        page = render_template(template, error=str(exc), error_field=exc.field, **context)
        return None, (page, exc.http_status)
    commit()
    return result, None
