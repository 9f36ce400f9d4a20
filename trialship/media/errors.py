"""Errors of the media package.

They hang off a local base for now so that the package stays importable on its own; the lead
re-parents `MediaBaseError` onto `trialship.errors.TrialshipError` when the services use it.
"""

from __future__ import annotations


class MediaBaseError(Exception):
    """Base of every error raised by `trialship.media`."""


class PlanError(MediaBaseError):
    """The exams cannot be put on discs as asked (nothing to plan, an exam too large, ...)."""


class MediaError(MediaBaseError):
    """Writing, reading or checking a disc image failed; the message names the file."""


class FileIdError(MediaError, ValueError):
    """A File ID, Volume ID or File-set ID breaks PS3.10 section 8 / ISO 9660 Level 1."""


class DicomdirError(MediaError, ValueError):
    """A DICOMDIR cannot be written from the given entries (missing key, duplicate, ...)."""


class SourceChangedError(MediaError):
    """A source file changed since it was recorded (its bytes no longer have the recorded
    SHA-256) or since its header was read (its FileStamp differs)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class ManifestMismatch(MediaError):
    """A file on the image is not what the manifest says (`path`: its manifest path)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
