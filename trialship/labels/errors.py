"""The one error of the labels package."""

from __future__ import annotations

from trialship.errors import TrialshipError


class LabelError(TrialshipError):
    """A template is invalid, or a label cannot be laid out (names the file, key or field)."""

    code = "label"
    http_status = 422
    exit_code = 2
