"""One error hierarchy. Web maps it to HTTP, the CLI to exit codes, jobs to a failed state."""

from __future__ import annotations


class TrialshipError(Exception):
    """Base of every error a user can act on. `code` is a stable machine-readable name."""

    code = "error"
    http_status = 400
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(TrialshipError):
    """A value does not fit its field (names the field)."""

    code = "invalid"
    http_status = 422
    exit_code = 2


class NotFound(TrialshipError):
    code = "not_found"
    http_status = 404


class Conflict(TrialshipError):
    """A duplicate: the object exists already."""

    code = "conflict"
    http_status = 409


class Forbidden(TrialshipError):
    """The user lacks the role, or the trial is read-only."""

    code = "forbidden"
    http_status = 403


class Unauthorized(TrialshipError):
    code = "unauthorized"
    http_status = 401


class ConfigError(TrialshipError):
    code = "config"
    exit_code = 2
