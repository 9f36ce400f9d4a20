"""Who an instance belongs to in the trial: the values written instead of the originals."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from trialship.deid.dates import date_offset
from trialship.deid.errors import DeidError
from trialship.deid.profile import Profile


@dataclass(frozen=True)
class DeidContext:
    """Everything trial-specific the engine needs for one instance. Built by the caller.

    `uid_secret` keys the UID remapping and the date shift; `known_identifiers` are extra original
    values (registry MRNs, former names) the leak check and the text cleaner must look for.
    """

    subject_id: str
    uid_secret: bytes = field(repr=False)
    date_shift_days: int = 0
    reading_id: str = ""
    site_id: str = ""
    site_name: str = ""
    timepoint_id: str = ""
    timepoint_description: str = ""
    sponsor_name: str = ""
    protocol_id: str = ""
    protocol_name: str = ""
    coordinating_center: str = ""
    ethics_committee_name: str = ""
    ethics_approval_number: str = ""
    consent: bool | None = None
    """True writes a consent item (YES, NAMED_PROTOCOL), False writes NO, None writes nothing."""
    pixels_cleaned: bool = False
    """True when trialship.pixels cleaned this instance's pixels (Clean Pixel Data applied)."""
    known_identifiers: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.subject_id.strip():
            raise DeidError("subject_id is required")
        if not self.uid_secret:
            raise DeidError("uid_secret is required")

    # Both once per context: the engine asks for each instance, and a run reuses a subject's.
    @functools.cached_property
    def writes_non_ascii(self) -> bool:
        """Whether a trial value needs more than ASCII (the output is then declared UTF-8)."""
        return any(not value.isascii() for value in self.trial_values)

    @functools.cached_property
    def trial_values(self) -> tuple[str, ...]:
        """The values the engine writes on purpose: never reported as leaks."""
        values = (
            self.subject_id,
            self.reading_id,
            self.site_id,
            self.site_name,
            self.timepoint_id,
            self.timepoint_description,
            self.sponsor_name,
            self.protocol_id,
            self.protocol_name,
            self.coordinating_center,
            self.ethics_committee_name,
            self.ethics_approval_number,
        )
        return tuple(value for value in values if value.strip())


def make_context(
    profile: Profile,
    *,
    subject_id: str,
    uid_secret: bytes | None = None,
    known_identifiers: Iterable[str] = (),
    **values: str | bool | None,
) -> DeidContext:
    """A context for `subject_id` under `profile`: trial values from the profile, date shift
    derived from the secret and subject (see `date_offset`), keyword `values` override the rest.
    """
    secret = uid_secret if uid_secret is not None else profile.uid_secret
    if not secret:
        raise DeidError("the profile has no resolved uid_secret; pass uid_secret")
    lo, hi = profile.date_shift_days
    defaults: dict[str, str | bool | None] = {
        "sponsor_name": profile.trial.sponsor_name,
        "protocol_id": profile.trial.protocol_id,
        "protocol_name": profile.trial.protocol_name,
        "coordinating_center": profile.trial.coordinating_center,
        "ethics_committee_name": profile.trial.ethics_committee_name,
        "ethics_approval_number": profile.trial.ethics_approval_number,
    }
    defaults.update(values)
    return DeidContext(
        subject_id=subject_id,
        uid_secret=secret,
        date_shift_days=date_offset(secret, subject_id, lo, hi),
        known_identifiers=tuple(known_identifiers),
        **defaults,  # type: ignore[arg-type]
    )
