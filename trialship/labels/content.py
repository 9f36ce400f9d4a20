"""What goes on a disc label: one frozen value per disc, flattened to named text fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields

from trialship.labels.errors import LabelError

# Keys computed from the stored values; templates may reference them like any stored one.
DERIVED_KEYS = (
    "disc_label",
    "exam_type",
    "deidentified",
    "manifest_sha256_short",
)


@dataclass(frozen=True)
class LabelContent:
    """The values printed on one disc label.

    Trial contents (HIRO) fill the trial fields, research contents the requester, study and
    request fields; one label holds one kind, never both, so that a template can place both
    kinds in the same spot. There is deliberately no field for a hospital or institution name:
    a label travels to the sponsor with the disc.
    """

    disc_number: int = 1
    disc_count: int = 1
    disc_id: str = ""
    manifest_sha256: str = ""
    trial_name: str = ""
    protocol_number: str = ""
    site_number: str = ""
    subject_id: str = ""
    time_point: str = ""
    exam_date: dt.date | str | None = None
    modality: str = ""
    exam_description: str = ""
    requester_name: str = ""
    study_name: str = ""
    request_number: str = ""
    is_deidentified: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.disc_number <= self.disc_count:
            raise LabelError(
                f"disc number {self.disc_number} is not within 1..{self.disc_count}",
                field="disc_number",
            )
        if self.trial_name and (self.study_name or self.requester_name or self.request_number):
            raise LabelError(
                "a label holds trial contents or research contents, not both",
                field="study_name",
            )
        if bool(self.disc_id) != bool(self.manifest_sha256):
            # The QR code is only useful with both: the disc and the proof of what is on it.
            raise LabelError("disc_id and manifest_sha256 go together", field="disc_id")

    @property
    def qr_payload(self) -> str:
        """The QR code's text: the disc ID and the manifest hash, as `key=value` lines."""
        if not self.disc_id:
            return ""
        return f"disc_id={self.disc_id}\nmanifest_sha256={self.manifest_sha256}"

    def fields(self) -> Mapping[str, str]:
        """Every printable value by key; an empty string means 'not on this label'."""
        values: dict[str, str] = {}
        for spec in fields(self):
            if spec.name == "is_deidentified":
                continue
            values[spec.name] = _text(getattr(self, spec.name))
        values["disc_label"] = f"Disc {self.disc_number} of {self.disc_count}"
        values["exam_type"] = " · ".join(v for v in (self.modality, self.exam_description) if v)
        values["deidentified"] = "De-identified" if self.is_deidentified else ""
        values["manifest_sha256_short"] = self.manifest_sha256[:12]
        return values


def field_keys() -> frozenset[str]:
    """The keys a template may reference."""
    stored = {f.name for f in fields(LabelContent) if f.name != "is_deidentified"}
    return frozenset(stored | set(DERIVED_KEYS))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    # Labels are printed: a stray newline or tab would break the layout, not add meaning.
    return " ".join(str(value).split())
