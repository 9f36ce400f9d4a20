"""The PS3.15 Annex E options, by the names profiles use, with their CID 7050 codes."""

from __future__ import annotations

import enum

BASIC_PROFILE_CODE = "113100"
BASIC_PROFILE_MEANING = "Basic Application Confidentiality Profile"
CODING_SCHEME = "DCM"


class Option(enum.Enum):
    """One Annex E option. `value` is the name used in profiles; see `code` and `meaning`."""

    CLEAN_PIXEL_DATA = "clean_pixel_data"
    """Burned-in text removed from the pixels (done by trialship.pixels, not by this engine)."""
    CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "clean_recognizable_visual_features"
    """Faces and other recognisable features removed from the pixels (trialship.pixels)."""
    CLEAN_GRAPHICS = "clean_graphics"
    """Graphic annotations and overlays cleaned instead of removed."""
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"
    """SR content and acquisition context cleaned instead of replaced."""
    CLEAN_DESCRIPTORS = "clean_descriptors"
    """Free-text descriptions (Study, Series, Protocol...) cleaned instead of removed."""
    RETAIN_LONGITUDINAL_FULL_DATES = "retain_longitudinal_full_dates"
    """Dates and times kept unchanged."""
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain_longitudinal_modified_dates"
    """Dates shifted by a per-subject whole number of days; intervals are preserved."""
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    """Sex, age, size, weight and similar kept."""
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    """Device serial numbers, station names and similar kept."""
    RETAIN_UIDS = "retain_uids"
    """Original UIDs kept (no remapping)."""
    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    """Private attributes known to be safe (PS3.15 Table E.3.10-1) kept; others removed."""
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    """Institution name, address and department kept."""

    @property
    def code(self) -> str:
        return _CODES[self][0]

    @property
    def meaning(self) -> str:
        return _CODES[self][1]

    @property
    def column(self) -> str | None:
        """The column of Table E.1-1 this option fills, or None for the pixel options."""
        return _CODES[self][2]


_CODES: dict[Option, tuple[str, str, str | None]] = {
    Option.CLEAN_PIXEL_DATA: ("113101", "Clean Pixel Data Option", None),
    Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES: (
        "113102",
        "Clean Recognizable Visual Features Option",
        None,
    ),
    Option.CLEAN_GRAPHICS: ("113103", "Clean Graphics Option", "clean_graphics_113103"),
    Option.CLEAN_STRUCTURED_CONTENT: (
        "113104",
        "Clean Structured Content Option",
        "clean_structured_content_113104",
    ),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option", "clean_descriptors_113105"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES: (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
        "rtn_long_full_dates_113106",
    ),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
        "rtn_long_modified_dates_113107",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: (
        "113108",
        "Retain Patient Characteristics Option",
        "rtn_patient_characteristics_113108",
    ),
    Option.RETAIN_DEVICE_IDENTITY: (
        "113109",
        "Retain Device Identity Option",
        "rtn_device_identity_113109",
    ),
    Option.RETAIN_UIDS: ("113110", "Retain UIDs Option", "rtn_uids_113110"),
    Option.RETAIN_SAFE_PRIVATE: (
        "113111",
        "Retain Safe Private Option",
        "rtn_safe_private_113111",
    ),
    Option.RETAIN_INSTITUTION_IDENTITY: (
        "113112",
        "Retain Institution Identity Option",
        "rtn_institution_identity_113112",
    ),
}

# Options the engine itself cannot perform: they are done on decoded pixels elsewhere and are only
# claimed in the output when the caller says the pixel step ran.
PIXEL_OPTIONS = frozenset({Option.CLEAN_PIXEL_DATA, Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES})


def option_named(name: str) -> Option:
    """The option with this profile name; raises ValueError for an unknown name."""
    return Option(name)
