"""What the engine writes after the profile: the trial identity (HIRO rules), the Clinical Trial
attributes (PS3.3 C.7.1.3, C.7.2.3, C.7.3.2), the de-identification method and media dummies."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydicom import config
from pydicom.charset import default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian

from trialship.deid.age import age_at, cap_age, parse_da
from trialship.deid.context import DeidContext
from trialship.deid.datasets import new_dataset
from trialship.deid.elements import (
    BULK_TAGS,
    canonical_text,
    dictionary_vr,
    new_element,
    text_value,
)
from trialship.deid.options import (
    BASIC_PROFILE_CODE,
    BASIC_PROFILE_MEANING,
    CODING_SCHEME,
    PIXEL_OPTIONS,
    Option,
)
from trialship.deid.profile import PatientAgePolicy, Profile
from trialship.deid.raw_encode import EncodedSequence, encode_items, encoded_sequence
from trialship.deid.raw_parse import as_if_sequence_converted, tag_key
from trialship.deid.report import ReportAction, ReportBuilder, ReportEntry, report_entry
from trialship.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from trialship.deid.values import DUMMY_DATE, DUMMY_TIME

# Modalities and SOP classes whose pixels often carry burned-in names (PS3.15 E.3.1 notes).
RISK_MODALITIES = frozenset({"US", "SC", "XA", "RF", "ES", "XC", "OT"})
SC_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)


@dataclass(frozen=True)
class Originals:
    """Values read before the profile runs (the profile removes most of them)."""

    birth_date: str
    exam_date: str
    patient_age: str
    modality: str
    sop_class_uid: str
    burned_in: str
    transfer_syntax: str
    media_sop_instance_uid: str

    @classmethod
    def of(cls, ds: Dataset) -> Originals:
        def text(keyword: str) -> str:
            return text_value(ds, keyword)

        exam = next(
            (
                text(k)
                for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
                if text(k)
            ),
            "",
        )
        meta = getattr(ds, "file_meta", None)
        syntax = _uid(meta, "TransferSyntaxUID") if meta is not None else ""
        return cls(
            birth_date=text("PatientBirthDate"),
            exam_date=exam,
            patient_age=text("PatientAge"),
            modality=text("Modality").upper(),
            sop_class_uid=text("SOPClassUID")
            or (_uid(meta, "MediaStorageSOPClassUID") if meta else ""),
            burned_in=text("BurnedInAnnotation").upper(),
            transfer_syntax=syntax,
            media_sop_instance_uid=_uid(meta, "MediaStorageSOPInstanceUID") if meta else "",
        )


@functools.lru_cache(maxsize=256)
def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag_key(tag)


def _element(keyword: str, value: Any) -> DataElement | RawDataElement:
    # The engine's own values are known to fit their VRs: pydicom's per-value validation, which
    # costs more than the rest of writing them, is skipped (see `new_element`).
    if isinstance(value, str):
        raw = _text_element(keyword, value)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        raw = _text_element(keyword, tuple(value))
    else:
        raw = None
    if raw is not None:
        return raw
    tag = _tag(keyword)
    return new_element(tag, dictionary_vr(tag), value)


def forget_written_values() -> None:
    """Drop the remembered engine-written elements (an age is derived from a birth date)."""
    _text_element.cache_clear()
    _planned.cache_clear()
    _meta_element.cache_clear()  # (SOP classes and transfer syntaxes read from the inputs)


@functools.lru_cache(maxsize=1024)
def _text_element(keyword: str, value: str | tuple[str, ...]) -> RawDataElement | None:
    """The raw element for a text value, built once: every file of a trial gets the same ones
    (a raw element is immutable, so they are shared). None when it is not stored raw."""
    tag = _tag(keyword)
    elem = new_element(tag, dictionary_vr(tag), list(value) if isinstance(value, tuple) else value)
    return elem if isinstance(elem, RawDataElement) else None


def _put(ds: Dataset, elem: DataElement | RawDataElement) -> None:
    tag = elem.tag
    if elem.VR == "SQ" or tag >> 16 & 1 or tag in BULK_TAGS:
        ds[tag] = elem  # __setitem__ wraps a list in a Sequence, tracks creators and pixels
    else:
        # A standard, non-pixel tag: nothing of __setitem__'s bookkeeping applies.
        ds._dict[tag] = elem


def _set(ds: Dataset, keyword: str, value: Any, report: ReportBuilder, detail: str) -> None:
    planned = _planned(keyword, value, detail) if value.__class__ is str else None
    if planned is None:
        _set_element(ds, keyword, _element(keyword, value), report, detail)
        return
    # What `_set_element` does for a shared raw element, its report entries built once.
    tag, elem, replaced, added = planned
    elems = ds._dict
    report.entries.append(replaced if tag in elems else added)
    elems[tag] = elem


@functools.lru_cache(maxsize=1024)
def _planned(
    keyword: str, value: str, detail: str
) -> tuple[BaseTag, RawDataElement, ReportEntry, ReportEntry] | None:
    """For a text the engine writes into every file of a trial (subject ID, site, Clinical Trial
    attributes...): its key, its raw element (`_text_element`) and its report entry as replaced
    or as added; None when `_put` would not simply store it (`_set_element` does it then)."""
    elem = _text_element(keyword, value)
    if elem is None or elem.VR == "SQ" or elem.tag >> 16 & 1 or elem.tag in BULK_TAGS:
        return None
    entries = [report_entry(elem.tag, keyword, keyword, action, detail) for action in _ACTIONS]
    return elem.tag, elem, entries[0], entries[1]


_ACTIONS = (ReportAction.REPLACED, ReportAction.ADDED)


def _set_element(
    ds: Dataset,
    keyword: str,
    elem: DataElement | RawDataElement,
    report: ReportBuilder,
    detail: str,
) -> None:
    action = ReportAction.REPLACED if elem.tag in ds._dict else ReportAction.ADDED
    _put(ds, elem)
    report.add(elem.tag, keyword, keyword, action, detail)


def _drop(ds: Dataset, keyword: str, report: ReportBuilder, detail: str) -> None:
    if keyword in ds:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        del ds[keyword]
        report.add(tag, keyword, keyword, ReportAction.REMOVED, detail)


def applied_options(profile: Profile, ctx: DeidContext) -> list[Option]:
    """Options the output may claim: pixel options only when the pixel step really ran."""
    return list(_applied_options(profile.options, ctx.pixels_cleaned))


def applied_option_names(profile: Profile, *, pixels_cleaned: bool = False) -> list[str]:
    """The names of the options an output of `profile` claims, as its receipt lists them (a
    profile's pixel options are not claimed where no pixel step ran)."""
    return [option.value for option in _applied_options(profile.options, pixels_cleaned)]


@functools.lru_cache(maxsize=64)
def _applied_options(options: frozenset[Option], pixels_cleaned: bool) -> tuple[Option, ...]:
    # Asked several times per file: a frozenset hashes once, its members in Python each time.
    return tuple(
        option
        for option in Option
        if option in options and (option not in PIXEL_OPTIONS or pixels_cleaned)
    )


_MANUFACTURER = 0x00080070


def apply_identity(
    ds: Dataset, profile: Profile, ctx: DeidContext, originals: Originals, report: ReportBuilder
) -> None:
    """HIRO trial rules: the subject ID as name and ID, capped age, the site as institution."""
    _set(ds, "PatientName", ctx.subject_id, report, "trial subject ID")
    _set(ds, "PatientID", ctx.subject_id, report, "trial subject ID")
    age = _age(originals)
    if profile.patient_age is PatientAgePolicy.REMOVE or not age:
        _drop(ds, "PatientAge", report, "patient_age policy" if age else "age unknown")
    else:
        _set(ds, "PatientAge", age, report, "age at exam, capped at 090Y")
    site = ctx.site_name or ctx.site_id
    if site and Option.RETAIN_INSTITUTION_IDENTITY not in profile.options:
        _set(ds, "InstitutionName", site, report, "trial site")
        if _MANUFACTURER not in ds._dict and "Manufacturer" not in profile.remove:
            # InstitutionName belongs to the General Equipment module, whose Manufacturer is
            # Type 2: present, if empty, once the module is there (unless the trial says no).
            _set(ds, "Manufacturer", "", report, "General Equipment module of the trial site")
    values = {
        "subject_id": ctx.subject_id,
        "site_id": ctx.site_id,
        "site_name": ctx.site_name,
        "timepoint_id": ctx.timepoint_id,
    }
    for keyword, value in profile.replacements(values):
        _set(ds, keyword, value, report, "per-trial replace")


def _age(originals: Originals) -> str:
    birth, exam = parse_da(originals.birth_date), parse_da(originals.exam_date)
    if birth and exam:
        computed = age_at(birth, exam)
        if computed:
            return computed
    return cap_age(originals.patient_age) or "" if originals.patient_age else ""


def write_clinical_trial(
    ds: Dataset, profile: Profile, ctx: DeidContext, report: ReportBuilder
) -> None:
    """Group 0012 from the context; Type 2 attributes are written empty when unknown."""
    detail = "clinical trial attribute"
    sponsor = ctx.sponsor_name or profile.trial.sponsor_name
    protocol_id = ctx.protocol_id or profile.trial.protocol_id
    required: list[tuple[str, str]] = [
        ("ClinicalTrialSponsorName", sponsor),
        ("ClinicalTrialProtocolID", protocol_id),
        ("ClinicalTrialProtocolName", ctx.protocol_name or profile.trial.protocol_name),
        ("ClinicalTrialSiteID", ctx.site_id),
        ("ClinicalTrialSiteName", ctx.site_name),
        ("ClinicalTrialSubjectID", ctx.subject_id),
        ("ClinicalTrialTimePointID", ctx.timepoint_id),
        ("ClinicalTrialCoordinatingCenterName", ctx.coordinating_center),
    ]
    for keyword, value in required:
        _set(ds, keyword, value, report, detail)
    optional = [
        ("ClinicalTrialSubjectReadingID", ctx.reading_id),
        ("ClinicalTrialTimePointDescription", ctx.timepoint_description),
    ]
    ethics_name = ctx.ethics_committee_name or profile.trial.ethics_committee_name
    ethics_number = ctx.ethics_approval_number or profile.trial.ethics_approval_number
    if ethics_name:
        optional.append(("ClinicalTrialProtocolEthicsCommitteeName", ethics_name))
        # The approval number is only meaningful with the committee's name (C.7.1.3: 1C).
        optional.append(("ClinicalTrialProtocolEthicsCommitteeApprovalNumber", ethics_number))
    for keyword, value in optional:
        if value:
            _set(ds, keyword, value, report, detail)
    if ctx.consent is not None:
        item = Dataset()
        item.ConsentForDistributionFlag = "YES" if ctx.consent else "NO"
        if ctx.consent:
            item.DistributionType = "NAMED_PROTOCOL"
            item.ClinicalTrialProtocolID = protocol_id
        _set(ds, "ConsentForClinicalTrialUseSequence", [item], report, detail)


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    for keyword, text in (
        ("CodeValue", value),
        ("CodingSchemeDesignator", CODING_SCHEME),
        ("CodeMeaning", meaning),
    ):
        _put(item, _element(keyword, text))
    return item


def _method_codes(options: Iterable[Option]) -> list[Dataset]:
    codes = [_code_item(BASIC_PROFILE_CODE, BASIC_PROFILE_MEANING)]
    codes += [_code_item(option.code, option.meaning) for option in options]
    return codes


@functools.lru_cache(maxsize=64)
def _encoded_method_codes(options: tuple[Option, ...]) -> EncodedSequence | None:
    data = encode_items(_method_codes(options))
    tag = _tag("DeidentificationMethodCodeSequence")
    return None if data is None else encoded_sequence(tag, data, 0)


def decode_method_codes(ds: Dataset, profile: Profile, ctx: DeidContext) -> None:
    """Parsed items instead of encoded ones in the code sequence (see `write_method`)."""
    keyword = "DeidentificationMethodCodeSequence"
    if isinstance(ds._dict.get(_tag(keyword)), EncodedSequence):
        _put(ds, _element(keyword, _method_codes(applied_options(profile, ctx))))


def write_method(
    ds: Dataset,
    profile: Profile,
    ctx: DeidContext,
    profile_digest: str,
    report: ReportBuilder,
    *,
    encoded: bool = False,
) -> None:
    """PS3.15 E.1.1 step 6 and E.2/E.3.6: say what was done, in text and in codes.

    `encoded` puts the code sequence in as its encoded items (the same in every file of a
    profile; see `raw_encode.EncodedSequence`); `decode_method_codes` puts parsed items back.
    """
    options = applied_options(profile, ctx)
    _set(ds, "PatientIdentityRemoved", "YES", report, "E.1.1 step 6")
    method = [BASIC_PROFILE_MEANING] + [option.meaning for option in options]
    method.append(f"trialship profile {profile.name}"[:50] + f" {profile_digest[:12]}")
    _set(ds, "DeidentificationMethod", method, report, "E.1.1 step 6")
    codes = _encoded_method_codes(tuple(options)) if encoded else None
    if codes is None:
        _set(ds, "DeidentificationMethodCodeSequence", _method_codes(options), report, "CID 7050")
    else:
        _set_element(ds, "DeidentificationMethodCodeSequence", codes, report, "CID 7050")
        as_if_sequence_converted(ds)  # what putting in parsed items does to `ds`
    if Option.RETAIN_LONGITUDINAL_FULL_DATES in profile.options:
        longitudinal = "UNMODIFIED"
    elif Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options:
        longitudinal = "MODIFIED"
    else:
        longitudinal = "REMOVED"
    _set(ds, "LongitudinalTemporalInformationModified", longitudinal, report, "E.2 / E.3.6")
    if Option.CLEAN_PIXEL_DATA in options:
        _set(ds, "BurnedInAnnotation", "NO", report, "E.3.1 (pixels cleaned)")


def needs_pixel_review(originals: Originals, profile: Profile, ctx: DeidContext) -> bool:
    """True when pixels may carry burned-in text and nobody cleaned them.

    Risky: BurnedInAnnotation YES; or a risk modality / Secondary Capture class, whatever its
    BurnedInAnnotation says (an ultrasound unit that writes NO still prints the name on the
    screen it captures: PS3.15 E.3.1 asks a person to look, or a cleaner to clean).
    """
    if Option.CLEAN_PIXEL_DATA in applied_options(profile, ctx):
        return False
    if originals.burned_in == "YES":
        return True
    return originals.modality in RISK_MODALITIES or originals.sop_class_uid in SC_SOP_CLASSES


def media_dummies(ds: Dataset, ctx: DeidContext, report: ReportBuilder) -> None:
    """Keys DICOMDIR records need (PS3.3 F.5) must not be empty after the profile."""
    detail = "media dummy"

    def missing(keyword: str) -> bool:
        return text_value(ds, keyword) == ""

    def first_present(*keywords: str) -> str:
        return next((str(ds.get(k)) for k in keywords if not missing(k)), "")

    if missing("StudyDate"):
        # A kept or shifted date of the same exam keeps the study's place in time.
        date = first_present("SeriesDate", "AcquisitionDate", "ContentDate")
        _set(ds, "StudyDate", date[:8] or DUMMY_DATE, report, detail)
    if missing("StudyTime"):
        _set(
            ds,
            "StudyTime",
            first_present("SeriesTime", "AcquisitionTime") or DUMMY_TIME,
            report,
            detail,
        )
    if missing("StudyID"):
        _set(ds, "StudyID", (ctx.timepoint_id or "1")[:16], report, detail)
    if missing("SeriesNumber"):
        _set(ds, "SeriesNumber", "1", report, detail)
    if missing("InstanceNumber"):
        _set(ds, "InstanceNumber", "1", report, detail)
    if missing("Modality"):
        _set(ds, "Modality", "OT", report, detail)


def new_file_meta(
    ds: Dataset, originals: Originals, remap: Callable[[str], str]
) -> FileMetaDataset:
    """PS3.15 E.1.1 step 7: new File Meta Information; only the transfer syntax is carried over.

    The instance UID follows SOPInstanceUID; an object without one (a DICOMDIR) gets its old
    media UID passed through `remap` (identity under Retain UIDs).
    """
    sop_class = _uid(ds, "SOPClassUID") or originals.sop_class_uid
    instance = _uid(ds, "SOPInstanceUID") or (
        remap(originals.media_sop_instance_uid) if originals.media_sop_instance_uid else ""
    )
    meta = new_dataset(FileMetaDataset, {}, default_encoding)
    for tag, vr, value in (
        (0x00020002, "UI", sop_class),
        (0x00020003, "UI", instance),
        (0x00020010, "UI", originals.transfer_syntax or ExplicitVRLittleEndian),
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
        (0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),
    ):
        # Group 2 tags and values of their VRs: FileMetaDataset's checks would find nothing.
        # A value that encodes plainly is held raw, as read from a file (see `new_element`).
        text = str(value)
        elem = new_element(tag, vr, text) if tag == 0x00020003 else _meta_element(tag, vr, text)
        if elem.__class__ is not RawDataElement:
            typed = UID(str(value)) if vr == "UI" else value
            elem = DataElement(tag, vr, typed, validation_mode=config.IGNORE)
        meta._dict[tag_key(tag)] = elem
    return meta


@functools.lru_cache(maxsize=64)
def _meta_element(tag: int, vr: str, value: str) -> DataElement | RawDataElement:
    """`new_element` of a file meta value the files of a run share (SOP class, transfer syntax,
    implementation): built once. (A DataElement is mutable: the caller builds its own then.)"""
    return new_element(tag, vr, value)


def _uid(ds: Dataset, keyword: str) -> str:
    """A UID of `ds` as text. Left raw when its bytes are what the converted value is written as;
    else converted in place, as `ds.get` does (the output then writes it re-encoded)."""
    text = canonical_text(ds._dict.get(_tag(keyword)), "UI")
    return text if text is not None else str(ds.get(keyword) or "")
