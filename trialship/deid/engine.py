"""`deidentify`: one dataset in, the de-identified dataset and its report out."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from trialship.deid.context import DeidContext
from trialship.deid.dates import shift_da, shift_dt
from trialship.deid.errors import LeakError
from trialship.deid.identifiers import Identifiers, collect_identifiers, forget_identifiers
from trialship.deid.iod_types import types_for
from trialship.deid.leak import Leak, find_leaks, forget_glances
from trialship.deid.matching import forget_patient_tokens
from trialship.deid.options import Option
from trialship.deid.profile import Profile, profile_hash
from trialship.deid.profile_checks import MANAGED_KEYWORDS
from trialship.deid.references import drop_unreferenced_module, references_elsewhere
from trialship.deid.report import DeidReport, ReportBuilder
from trialship.deid.rules import compile_rules
from trialship.deid.scrub import scrubber_for
from trialship.deid.trial import (
    Originals,
    applied_option_names,
    apply_identity,
    decode_method_codes,
    forget_written_values,
    media_dummies,
    needs_pixel_review,
    new_file_meta,
    write_clinical_trial,
    write_method,
)
from trialship.deid.uids import remap_uid
from trialship.deid.walker import Walker, forget_outcomes, outcome_memo

_INSTITUTION = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")


@dataclass(frozen=True)
class DeidResult:
    """The de-identified dataset (the input object, changed in place) and what happened to it."""

    dataset: Dataset
    report: DeidReport
    leaks: tuple[Leak, ...] = ()
    """Possible leaks found by the fail-closed check; a file with any must not leave."""

    @property
    def needs_pixel_review(self) -> bool:
        return self.report.needs_pixel_review

    @property
    def ok(self) -> bool:
        return not self.leaks

    def raise_for_leaks(self) -> None:
        if self.leaks:
            raise LeakError(self.leaks)


def identifiers_for(ds: Dataset, profile: Profile, ctx: DeidContext) -> Identifiers:
    """The identifiers to look for in this instance's output, given what the profile retains.

    UIDs are left out here: the engine records them while it remaps (a second walk would cost).
    """
    excluded = set(profile.keep)
    if Option.RETAIN_INSTITUTION_IDENTITY in profile.options:
        excluded.update(_INSTITUTION)
    found = collect_identifiers(
        ds,
        extra=ctx.known_identifiers,
        allowed=ctx.trial_values,
        exclude_keywords=excluded,
        include_uids=False,
    )
    return dataclasses.replace(found, written=_written(profile.replace))


@functools.lru_cache(maxsize=64)
def _written(replace: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The attributes the trial's values go into: its identity, and the per-trial replacements."""
    return MANAGED_KEYWORDS | {"InstitutionName"} | {keyword for keyword, _ in replace}


def deidentify(
    ds: Dataset, profile: Profile, ctx: DeidContext, *, check_leaks: bool = True
) -> DeidResult:
    """De-identify `ds` in place under `profile` for the subject in `ctx`.

    Steps: Table E.1-1 with the profile's options and per-trial keep/remove lists at every depth,
    combined codes resolved by the Types of the instance's IOD (`iod_types`);
    the trial identity (subject ID, capped age, site, per-trial replacements); the Clinical Trial
    attributes; the de-identification method; media dummies; new file meta and preamble; then the
    leak check (skip with `check_leaks=False` only when the caller runs `find_leaks` itself).

    Pixel data is never read. `ds` is changed in place: read a fresh copy to de-identify again.
    """
    digest = _profile_hash(profile)
    originals = Originals.of(ds)
    identifiers = identifiers_for(ds, profile, ctx)
    report = ReportBuilder()
    scrubber = scrubber_for(identifiers)
    # Combined codes resolve by the Types of the instance's IOD: rules compiled once per
    # profile and distinct Types table (IODs with the same Types share them and their memo).
    types = types_for(originals.sop_class_uid)
    rules = compile_rules(profile.options, profile.keep, profile.remove, types)
    walker = Walker(
        rules=rules,
        uid_secret=ctx.uid_secret,
        shift_days=ctx.date_shift_days,
        private_tags=profile.private_tags,
        scrub=scrubber.scrub,
        report=report,
        finds=scrubber.finds,
        memo=outcome_memo(
            rules, scrubber, ctx.uid_secret, ctx.date_shift_days, profile.private_tags
        ),
        # Sequences are put back as encoded items only where raw_encode writes them: pydicom
        # writes a deflated data set, and all of one whose text is re-encoded.
        encode_sequences=not ctx.writes_non_ascii
        and originals.transfer_syntax != DeflatedExplicitVRLittleEndian,
    )
    referenced = references_elsewhere(ds)
    walker.walk(ds)
    drop_unreferenced_module(ds, referenced, report)
    apply_identity(ds, profile, ctx, originals, report)
    write_clinical_trial(ds, profile, ctx, report)
    write_method(ds, profile, ctx, digest, report, encoded=walker.encode_sequences)
    media_dummies(ds, ctx, report)
    _utf8_if_needed(ds, ctx)
    if ds.original_character_set != ds._character_set:
        # The writer re-encodes everything, sequences as read (see raw_encode): parsed items.
        walker.decode_sequences()
        decode_method_codes(ds, profile, ctx)
    keep_uids = Option.RETAIN_UIDS in profile.options or "SOPInstanceUID" in profile.keep
    ds.file_meta = new_file_meta(ds, originals, (lambda uid: uid) if keep_uids else walker.remap)
    if isinstance(ds, FileDataset):
        ds.preamble = b"\0" * 128

    leaks: tuple[Leak, ...] = ()
    if check_leaks:
        kept_uids = Option.RETAIN_UIDS in profile.options
        uids = (
            frozenset() if kept_uids else frozenset(walker.uid_map) - set(walker.uid_map.values())
        )
        leaks = tuple(find_leaks(ds, dataclasses.replace(identifiers, uids=uids)))
    review = needs_pixel_review(originals, profile, ctx)
    if review:
        report.warn("pixels may hold burned-in text: review or clean before export")
    return DeidResult(
        dataset=ds,
        report=DeidReport(
            profile_name=profile.name,
            profile_hash=digest,
            options=tuple(applied_option_names(profile, pixels_cleaned=ctx.pixels_cleaned)),
            entries=tuple(report.entries),
            needs_pixel_review=review,
            warnings=tuple(report.warnings),
        ),
        leaks=leaks,
    )


def forget_cached_values() -> None:
    """Drop what the engine remembers across instances: identifiers and scrubbers (they hold a
    patient's identifiers and cleaned texts), the walk's element outcomes and what the leak
    check saw of them, UID remaps and date shifts (original values), written ages.

    The caches make a run fast; call this when a run ends so no original value outlives it in a
    long-running process (the web server's worker). Safe at any time: they only save work.
    """
    scrubber_for.cache_clear()
    re.purge()  # (re keeps the patterns it compiled: the scrubber's and leak check's hold PHI)
    forget_outcomes()
    forget_glances()
    forget_patient_tokens()
    forget_identifiers()
    forget_written_values()
    remap_uid.cache_clear()
    shift_da.cache_clear()
    shift_dt.cache_clear()
    _cached_profile_hash.cache_clear()  # profiles hold the UID secret


def _profile_hash(profile: Profile) -> str:
    try:
        return _cached_profile_hash(profile)
    except TypeError:  # a profile built by hand with an unhashable field: no cache
        return profile_hash(profile)


@functools.lru_cache(maxsize=32)
def _cached_profile_hash(profile: Profile) -> str:
    return profile_hash(profile)  # a pure function of the (frozen) profile: once per profile


def _utf8_if_needed(ds: Dataset, ctx: DeidContext) -> None:
    # Trial values may hold accents; declare UTF-8 so they encode (text is re-encoded on write).
    if ctx.writes_non_ascii:
        current = ds.get("SpecificCharacterSet")
        if current in (None, "", "ISO_IR 6", "ISO_IR 100") or current == ["ISO_IR 6"]:
            ds.SpecificCharacterSet = "ISO_IR 192"
