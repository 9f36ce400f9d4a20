"""A subject's files repeat most of their values: the engine remembers what it did to each raw
element and sequence (and the identifiers it read) and does it again from memory. The next
files must come out byte for byte as if each were de-identified afresh."""

from __future__ import annotations

import io
from typing import Any

import pytest
from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset

from trialship.deid import Option, PrivateTags, Profile, deidentify, forget_cached_values
from trialship.deid.raw_encode import EncodedSequence
from trialship.intake.dicom_stream import read_instance, write_instance


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "99LOCAL", meaning
    return item


def _file(instance_number: int, code_meaning: str = "CT Chest") -> bytes:
    """One file of the subject: sequences (nested), free text and UIDs at every depth."""
    ds = patient_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceNumber = str(instance_number)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = (
        f"1.2.826.0.1.3680043.99.1.{40 + instance_number}"
    )
    ds.PixelRepresentation = 0
    ds.ProcedureCodeSequence = [_code("CTCHEST", "CT Chest")]
    request = Dataset()
    request.AccessionNumber = ds.AccessionNumber
    request.RequestedProcedureDescription = "CT chest, Johanna Smithson"
    request.RequestedProcedureCodeSequence = [_code("CTCHEST", code_meaning)]
    reference = Dataset()
    reference.ReferencedSOPInstanceUID = ds.StudyInstanceUID + ".98"
    request.ReferencedStudySequence = [reference]
    ds.RequestAttributesSequence = [request]
    other = Dataset()
    other.PatientID = "OLD-MRN4711001"
    ds.OtherPatientIDsSequence = [other]
    source = Dataset()
    source.ReferencedSOPInstanceUID = ds.StudyInstanceUID + ".7"
    source.ReferencedSOPClassUID = ds.SOPClassUID
    ds.SourceImageSequence = [source]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _deidentify(data: bytes, profile: Profile, **ctx: Any) -> tuple[bytes, Any, Any]:
    source = io.BytesIO(data)
    instance = read_instance(source, len(data))
    result = deidentify(instance.dataset, profile, make_ctx(**ctx))
    target = io.BytesIO()
    write_instance(instance, source, target)
    return target.getvalue(), result.report.entries, result.leaks


PROFILES = {
    "basic": make_profile(),
    "descriptors": make_profile(
        [Option.CLEAN_DESCRIPTORS, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES]
    ),
    "keep-sequences": make_profile(
        [Option.CLEAN_DESCRIPTORS],
        keep=frozenset({"RequestAttributesSequence", "OtherPatientIDsSequence"}),
    ),
    "everything": make_profile(list(Option), private_tags=PrivateTags.KEEP),
    # The character set goes: the writer re-encodes all text, remembered sequences are parsed.
    "drops-charset": make_profile(
        [Option.CLEAN_DESCRIPTORS], remove=frozenset({"SpecificCharacterSet"})
    ),
}


@pytest.mark.parametrize("site_name", ["Site One", "Hôpital Sainte-Anne"])
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_subjects_next_files_come_out_as_if_each_were_the_first(
    name: str, site_name: str
) -> None:
    profile = PROFILES[name]
    files = [_file(number) for number in (1, 2, 3, 2)]
    forget_cached_values()
    remembered = [_deidentify(data, profile, site_name=site_name) for data in files]
    fresh = []
    for data in files:
        forget_cached_values()
        fresh.append(_deidentify(data, profile, site_name=site_name))
    forget_cached_values()
    assert remembered == fresh


def test_profiles_that_differ_only_in_private_tags_remember_apart() -> None:
    # A private element inside a standard sequence: its fate is the private tags policy's.
    files = []
    for number in (1, 2):
        source = io.BytesIO(_file(number))
        parsed = read_instance(source, len(source.getvalue())).dataset
        item = parsed.ProcedureCodeSequence[0]
        block = item.private_block(0x0009, "ACME PRIVATE", create=True)
        block.add_new(0x10, "LO", "vendor note")
        buffer = io.BytesIO()
        parsed.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    profiles = [
        make_profile([Option.CLEAN_DESCRIPTORS], private_tags=policy)
        for policy in (PrivateTags.REMOVE, PrivateTags.KEEP)
    ]
    forget_cached_values()
    remembered = [_deidentify(data, profile) for data in files for profile in profiles]
    fresh = []
    for data in files:
        for profile in profiles:
            forget_cached_values()
            fresh.append(_deidentify(data, profile))
    forget_cached_values()
    assert remembered == fresh
    assert remembered[0][0] != remembered[1][0], "the policies give different files"


def test_a_remembered_sequence_is_put_back_as_its_encoded_items() -> None:
    profile = PROFILES["descriptors"]
    forget_cached_values()
    first, second = (_file(1), _file(2))
    for data in (first, second):
        source = io.BytesIO(data)
        instance = read_instance(source, len(data))
        deidentify(instance.dataset, profile, make_ctx())
    ds = instance.dataset
    elem = ds.get_item("RequestAttributesSequence")
    assert isinstance(elem, EncodedSequence)
    # Read back, it holds the walked items: the de-identified values, the rest untouched.
    request = ds.RequestAttributesSequence[0]
    assert request.AccessionNumber == ""
    assert "Smithson" not in request.RequestedProcedureDescription
    assert request.RequestedProcedureCodeSequence[0].CodeMeaning == "CT Chest"
    assert "ReferencedStudySequence" not in request
    forget_cached_values()


def test_a_leak_inside_a_remembered_sequence_is_found_every_time() -> None:
    profile = make_profile(keep=frozenset({"RequestAttributesSequence"}))
    forget_cached_values()
    leaky = [_file(number, code_meaning="Chest, MRN4711001") for number in (1, 2, 3)]
    outcomes = [_deidentify(data, profile)[2] for data in leaky]
    forget_cached_values()
    assert outcomes[0], "a code meaning in the kept sequence holds the patient ID"
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_no_remembered_outcome_outlives_the_run() -> None:
    from trialship.deid import identifiers, leak, trial, walker

    for number in (1, 2):
        _deidentify(_file(number), PROFILES["descriptors"])
    assert walker._MEMOS and leak._GLANCED and identifiers._COLLECTED
    assert trial._text_element.cache_info().currsize
    forget_cached_values()
    assert not (walker._MEMOS or leak._GLANCED or identifiers._COLLECTED)
    assert not trial._text_element.cache_info().currsize
