"""Pure DICOM de-identification: PS3.15 Annex E rules, trial identity, leak check, receipts.

Takes a pydicom Dataset, a Profile and a DeidContext; returns a Dataset and a report. No disk
(except the packaged rule table), no clock, no environment, no database.
"""

from trialship.deid.context import DeidContext, make_context
from trialship.deid.dates import date_offset
from trialship.deid.engine import DeidResult, deidentify, forget_cached_values, identifiers_for
from trialship.deid.errors import DeidError, LeakError, ProfileError
from trialship.deid.identifiers import Identifiers, collect_identifiers
from trialship.deid.leak import Leak, find_leaks
from trialship.deid.options import Option
from trialship.deid.profile import (
    PatientAgePolicy,
    PrivateTags,
    Profile,
    TrialInfo,
    parse_profile,
    profile_hash,
)
from trialship.deid.profile_toml import default_profile_toml, to_toml
from trialship.deid.report import DeidReport, ReportAction, ReportEntry
from trialship.deid.rules import Action, compile_rules
from trialship.deid.trial import applied_option_names
from trialship.deid.uids import remap_uid

__all__ = [
    "Action",
    "DeidContext",
    "DeidError",
    "DeidReport",
    "DeidResult",
    "Identifiers",
    "Leak",
    "LeakError",
    "Option",
    "PatientAgePolicy",
    "PrivateTags",
    "Profile",
    "ProfileError",
    "ReportAction",
    "ReportEntry",
    "TrialInfo",
    "applied_option_names",
    "collect_identifiers",
    "compile_rules",
    "date_offset",
    "default_profile_toml",
    "deidentify",
    "find_leaks",
    "forget_cached_values",
    "identifiers_for",
    "make_context",
    "parse_profile",
    "profile_hash",
    "remap_uid",
    "to_toml",
]
