"""The fail-closed leak check finds planted original values wherever they hide."""

from __future__ import annotations

import pytest
from deid_helpers import SUBJECT, make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset

from trialship.deid import (
    LeakError,
    Option,
    PrivateTags,
    collect_identifiers,
    deidentify,
    find_leaks,
)


def _nest(depth: int, leaf: Dataset) -> Dataset:
    """`depth` levels of a kept (unlisted) sequence around `leaf`."""
    item = leaf
    for _ in range(depth):
        outer = Dataset()
        outer.AnatomicRegionSequence = [item]
        item = outer
    return item


def _kinds(leaks: list) -> set[str]:  # type: ignore[type-arg]
    return {leak.kind for leak in leaks}


@pytest.mark.parametrize(
    "options",
    [
        [],
        [Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS],
        [Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_PATIENT_CHARACTERISTICS],
        [Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_SAFE_PRIVATE],
    ],
)
def test_a_normal_instance_has_no_leaks(options: list[Option]) -> None:
    private = (
        PrivateTags.RETAIN_SAFE if Option.RETAIN_SAFE_PRIVATE in options else PrivateTags.REMOVE
    )
    result = deidentify(patient_dataset(), make_profile(options, private_tags=private), make_ctx())
    assert result.leaks == ()
    result.raise_for_leaks()


def test_name_ten_sequences_deep_is_found() -> None:
    leaf = Dataset()
    leaf.Manufacturer = "scanned by SMITHSON lab"
    ds = patient_dataset()
    ds.AnatomicRegionSequence = [_nest(9, leaf)]
    result = deidentify(ds, make_profile(), make_ctx())
    assert [leak.kind for leak in result.leaks] == ["name"]
    assert result.leaks[0].path.count("AnatomicRegionSequence[0]") == 10
    assert result.leaks[0].path.endswith("Manufacturer")
    with pytest.raises(LeakError):
        result.raise_for_leaks()


def test_patient_id_in_a_kept_private_tag_is_found() -> None:
    ds = patient_dataset()
    block = ds.private_block(0x0011, "ACME HOSPITAL", create=True)
    block.add_new(0x01, "LO", "pid=MRN4711001")
    result = deidentify(ds, make_profile(private_tags=PrivateTags.KEEP), make_ctx())
    assert _kinds(list(result.leaks)) == {"id"}
    removed = deidentify(patient_dataset(), make_profile(), make_ctx())
    assert removed.ok


def test_values_planted_in_the_output_file_meta_and_binary_are_found() -> None:
    original = patient_dataset()
    identifiers = collect_identifiers(original)
    out = deidentify(patient_dataset(), make_profile(), make_ctx()).dataset
    out.file_meta.SourceApplicationEntityTitle = "ACC99887766"
    out.add_new(0x00091001, "OB", b"\x00\x01header Johanna\x00")
    out.add_new(0x00090010, "LO", "X")
    leaks = find_leaks(out, identifiers)
    assert {(leak.kind, leak.path) for leak in leaks} == {
        ("id", "file_meta.SourceApplicationEntityTitle"),
        ("name", "(0009,1001)"),
    }


@pytest.mark.parametrize(
    ("keyword", "value", "kind"),
    [
        ("ImageComments", "born 15/03/1950", "birth_date"),
        ("ImageComments", "lives at 12 Elmwood Avenue", "address"),
        ("ImageComments", "call 555-867-5309", "phone"),
        ("ImageComments", "from springfield memorial hospital", "institution"),
        ("ImageComments", "study 1.2.826.0.1.3680043.99.1.1 again", "uid"),
        ("ImageComments", "Dr asked for Smithson", "name"),
        ("ImageComments", "see MRN 471 1001 for priors", "id"),
        ("ImageComments", "ref m.r.n-4711001", "id"),
    ],
)
def test_each_kind_of_identifier_is_found_in_text(keyword: str, value: str, kind: str) -> None:
    identifiers = collect_identifiers(patient_dataset())
    out = Dataset()
    setattr(out, keyword, value)
    assert kind in _kinds(find_leaks(out, identifiers))


def test_a_standard_codes_own_meaning_is_no_leak_but_a_name_added_to_it_is() -> None:
    def region(meaning: str, scheme: str = "SRT", value: str = "T-D1100") -> Dataset:
        ds = patient_dataset()
        ds.PatientName = "Head^One"  # a name part that is also a word of the vocabulary
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
        ds.AnatomicRegionSequence = [code]
        return ds

    result = deidentify(region("Head"), make_profile(), make_ctx(site_name="Site One"))
    assert result.ok, result.leaks
    assert result.dataset.PatientName == SUBJECT
    for ds in (region("Head, One"), region("Head", scheme="99LOCAL", value="H1")):
        leaks = deidentify(ds, make_profile(), make_ctx()).leaks
        assert [(leak.kind, leak.keyword) for leak in leaks] == [("name", "CodeMeaning")]


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("BodyPartExamined", "SMITHSON"),  # CS, typed at the modality
        ("ContentLabel", "JOHANNA"),
    ],
)
def test_names_in_code_strings_are_found(keyword: str, value: str) -> None:
    out = Dataset()
    setattr(out, keyword, value)
    leaks = find_leaks(out, collect_identifiers(patient_dataset()))
    assert [(leak.kind, leak.keyword) for leak in leaks] == [("name", keyword)]


def test_a_name_in_a_code_value_is_found_but_not_in_a_scheme_designator() -> None:
    identifiers = collect_identifiers(patient_dataset())
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "SMITHSON", "MARIA", "Chest"
    out = Dataset()
    out.ProcedureCodeSequence = [code]
    assert [leak.keyword for leak in find_leaks(out, identifiers)] == ["CodeValue"]


@pytest.mark.parametrize(
    "text", ["scan for Muller Jurgen", "Mueller, J.", "MUELLER", "seen by juergen"]
)
def test_the_ascii_spellings_of_a_non_ascii_name_are_found(text: str) -> None:
    ds = patient_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jürgen"
    out = Dataset()
    out.ImageComments = text
    assert _kinds(find_leaks(out, collect_identifiers(ds))) == {"name"}


def test_an_accented_spelling_of_a_name_registered_without_accents_is_found() -> None:
    ds = patient_dataset()
    ds.PatientName = "Muller^Jurgen"
    out = Dataset()
    out.SpecificCharacterSet = "ISO_IR 100"
    out.ImageComments = "seen by Dr Müller"
    assert _kinds(find_leaks(out, collect_identifiers(ds))) == {"name"}


@pytest.mark.parametrize(
    "text",
    [
        "born 15 March 1950",
        "dob 15-MAR-1950",
        "March 15, 1950",
        "b. 15 Mar. 1950",
        "born 15th March 1950",
        "DOB 15MAR1950",
    ],
)
def test_the_birth_date_in_words_is_found(text: str) -> None:
    out = Dataset()
    out.ImageComments = text
    assert _kinds(find_leaks(out, collect_identifiers(patient_dataset()))) == {"birth_date"}


def test_the_dummy_birth_date_of_unknown_patients_is_no_leak() -> None:
    ds = patient_dataset()
    ds.PatientBirthDate = "19000101"  # what many systems write for "unknown"
    del ds.StudyDate  # so the engine writes its dummy, 19000101
    result = deidentify(ds, make_profile(), make_ctx())
    assert result.dataset.StudyDate == "19000101"
    assert result.ok, result.leaks


def test_a_site_named_after_the_hospital_or_its_town_is_no_leak_but_the_address_is() -> None:
    street, town = str(patient_dataset().PatientAddress).split("^")
    for site_name in (str(patient_dataset().InstitutionName), f"{town} Site"):
        result = deidentify(patient_dataset(), make_profile(), make_ctx(site_name=site_name))
        assert result.ok, (site_name, result.leaks)
        assert result.dataset.ClinicalTrialSiteName == site_name
    ds = patient_dataset()
    ds.ImageComments = f"lives at {street}"
    kept = make_profile(keep=frozenset({"ImageComments"}))
    leaked = deidentify(ds, kept, make_ctx(site_name=f"{town} Site"))
    assert "address" in _kinds(list(leaked.leaks))


def test_a_name_that_is_an_ordinary_word_elsewhere_is_reported() -> None:
    ds = patient_dataset()
    ds.PatientName = "Head^One"
    ds.Manufacturer = "HEAD scanner"
    result = deidentify(ds, make_profile(), make_ctx())
    assert [(leak.kind, leak.keyword) for leak in result.leaks] == [("name", "Manufacturer")]


def test_retained_birth_date_is_not_a_leak_and_known_identifiers_are_checked() -> None:
    ds = patient_dataset()
    ds.ImageComments = "registry MRN X-778899"
    kept = make_profile(keep=frozenset({"PatientBirthDate", "ImageComments"}))
    result = deidentify(ds, kept, make_ctx(known_identifiers=("X-778899",)))
    assert result.dataset.PatientBirthDate == "19500315"
    assert [(leak.kind, leak.keyword) for leak in result.leaks] == [("id", "ImageComments")]


def test_subject_id_containing_no_original_value_is_fine() -> None:
    ds = patient_dataset()
    ds.PatientID = SUBJECT  # already pseudonymised upstream
    assert deidentify(ds, make_profile(), make_ctx()).ok


@pytest.mark.parametrize("site_name", ["Springfield", "Spring", "Hospital", "North Hospital"])
def test_a_trial_value_masks_nothing_outside_the_attributes_it_is_written_into(
    site_name: str,
) -> None:
    ds = patient_dataset()
    ds.ImageComments = f"seen at {ds.InstitutionName}"
    kept = make_profile(keep=frozenset({"ImageComments"}))
    result = deidentify(ds, kept, make_ctx(site_name=site_name))
    assert ("institution", "ImageComments") in {(k.kind, k.keyword) for k in result.leaks}
    assert result.dataset.ClinicalTrialSiteName == site_name
    assert "ClinicalTrialSiteName" not in {leak.keyword for leak in result.leaks}


def test_an_ids_digits_with_dots_in_a_uid_are_no_leak() -> None:
    # "4711001" spaced with dots is in a UID by chance: IDs with separators are looked for in
    # text, not in UIDs, dates or numbers.
    identifiers = collect_identifiers(patient_dataset())
    identifiers = identifiers.__class__(
        **{**identifiers.__dict__, "ids": identifiers.ids | {"4711001"}}
    )
    out = Dataset()
    out.SOPInstanceUID = "2.25.4.7.1.1.0.0.1.5"
    out.SliceThickness = "4.7"
    out.ImageComments = "MRN removed"
    assert find_leaks(out, identifiers) == []
    out.ImageComments = "id 4-7-1-1-0-0-1"
    assert _kinds(find_leaks(out, identifiers)) == {"id"}
