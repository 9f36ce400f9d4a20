"""After the profile: the subject's trial identity, Clinical Trial attributes, method, media keys,
UIDs consistent across instances, new file meta and a report without PHI."""

from __future__ import annotations

import json

from deid_helpers import SECRET, SUBJECT, make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset, FileDataset

from trialship.deid import Option, deidentify, remap_uid
from trialship.deid.uids import IMPLEMENTATION_CLASS_UID


def test_patient_identity_becomes_the_subject() -> None:
    out = deidentify(patient_dataset(), make_profile(), make_ctx()).dataset
    assert out.PatientName == SUBJECT and out.PatientID == SUBJECT
    assert out.InstitutionName == "Site One"
    assert out.PatientIdentityRemoved == "YES"
    assert out.get("PatientBirthDate", "") == ""
    assert out.AccessionNumber == ""


def test_clinical_trial_attributes_are_written_from_the_context() -> None:
    ctx = make_ctx(
        reading_id="R-17",
        timepoint_description="Baseline scan",
        coordinating_center="Acme CRO",
        ethics_committee_name="Springfield IRB",
        ethics_approval_number="IRB-2024-01",
        consent=True,
    )
    out = deidentify(patient_dataset(), make_profile(), ctx).dataset
    assert out.ClinicalTrialSponsorName == "Acme Oncology"
    assert out.ClinicalTrialProtocolID == "ACM-301"
    assert out.ClinicalTrialProtocolName == "Acme"
    assert (out.ClinicalTrialSiteID, out.ClinicalTrialSiteName) == ("S01", "Site One")
    assert out.ClinicalTrialSubjectID == SUBJECT
    assert out.ClinicalTrialSubjectReadingID == "R-17"
    assert out.ClinicalTrialTimePointID == "BASELINE"
    assert out.ClinicalTrialTimePointDescription == "Baseline scan"
    assert out.ClinicalTrialCoordinatingCenterName == "Acme CRO"
    assert out.ClinicalTrialProtocolEthicsCommitteeName == "Springfield IRB"
    assert out.ClinicalTrialProtocolEthicsCommitteeApprovalNumber == "IRB-2024-01"
    consent = out.ConsentForClinicalTrialUseSequence[0]
    assert consent.ConsentForDistributionFlag == "YES"
    assert consent.DistributionType == "NAMED_PROTOCOL"


def test_method_codes_list_basic_profile_and_applied_options() -> None:
    profile = make_profile([Option.CLEAN_DESCRIPTORS, Option.CLEAN_PIXEL_DATA])
    out = deidentify(patient_dataset(), profile, make_ctx()).dataset
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105"]  # pixels were not cleaned: 113101 not claimed
    assert "BurnedInAnnotation" not in out
    cleaned = deidentify(patient_dataset(), profile, make_ctx(pixels_cleaned=True)).dataset
    assert [item.CodeValue for item in cleaned.DeidentificationMethodCodeSequence] == [
        "113100",
        "113101",
        "113105",
    ]
    assert cleaned.BurnedInAnnotation == "NO"
    assert "Basic Application Confidentiality Profile" in cleaned.DeidentificationMethod


def test_pixel_review_flag_for_risky_instances() -> None:
    assert not deidentify(patient_dataset(), make_profile(), make_ctx()).needs_pixel_review
    for modality in ("US", "SC", "XA", "OT"):
        ds = patient_dataset()
        ds.Modality = modality
        assert deidentify(ds, make_profile(), make_ctx()).needs_pixel_review
    ds = patient_dataset()
    ds.BurnedInAnnotation = "YES"
    assert deidentify(ds, make_profile(), make_ctx()).needs_pixel_review
    ds = patient_dataset()
    ds.Modality, ds.BurnedInAnnotation = "US", "NO"  # the unit's word is not a person's look
    result = deidentify(ds, make_profile(), make_ctx())
    assert result.needs_pixel_review and result.dataset.BurnedInAnnotation == "NO"
    ds = patient_dataset()
    ds.Modality = "US"
    profile = make_profile([Option.CLEAN_PIXEL_DATA])
    assert not deidentify(ds, profile, make_ctx(pixels_cleaned=True)).needs_pixel_review


def test_per_trial_keep_remove_and_replace() -> None:
    profile = make_profile(
        keep=frozenset({"PatientSex"}),
        remove=frozenset({"SeriesNumber"}),
        replace=(("InstitutionName", "{site_id}-{timepoint_id}"), ("StationName", "{site_name}")),
    )
    out = deidentify(patient_dataset(), profile, make_ctx()).dataset
    assert out.PatientSex == "F"
    assert out.SeriesNumber == "1"  # removed, then the media dummy
    assert out.InstitutionName == "S01-BASELINE" and out.StationName == "Site One"


def test_a_removed_manufacturer_stays_removed_beside_the_site() -> None:
    ds = patient_dataset()
    ds.Manufacturer = "Acme Medical"
    out = deidentify(ds, make_profile(remove=frozenset({"Manufacturer"})), make_ctx()).dataset
    assert "Manufacturer" not in out and out.InstitutionName == "Site One"
    # Without the remove list, a General Equipment module gets its Type 2 Manufacturer.
    assert deidentify(patient_dataset(), make_profile(), make_ctx()).dataset.Manufacturer == ""


def test_retain_institution_identity_keeps_the_original() -> None:
    profile = make_profile([Option.RETAIN_INSTITUTION_IDENTITY])
    out = deidentify(patient_dataset(), profile, make_ctx()).dataset
    assert out.InstitutionName == "Springfield Memorial Hospital"


def test_media_keys_are_never_empty() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.99.5.5"
    out = deidentify(ds, make_profile(), make_ctx()).dataset
    assert (out.StudyDate, out.StudyTime, out.StudyID) == ("19000101", "000000", "BASELINE")
    assert (out.SeriesNumber, out.InstanceNumber, out.Modality) == ("1", "1", "OT")


def test_uids_are_stable_and_references_stay_consistent() -> None:
    first, second = patient_dataset(), patient_dataset()
    second.SOPInstanceUID = "1.2.826.0.1.3680043.99.1.30"
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ReferencedInstanceSequence = [reference]
    second.ReferencedSeriesSequence = [series]
    out_a = deidentify(first, make_profile(), make_ctx()).dataset
    out_b = deidentify(second, make_profile(), make_ctx()).dataset
    ref = out_b.ReferencedSeriesSequence[0]
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == out_a.SOPInstanceUID
    assert ref.SeriesInstanceUID == out_a.SeriesInstanceUID == out_b.SeriesInstanceUID
    assert out_a.StudyInstanceUID == remap_uid(SECRET, "1.2.826.0.1.3680043.99.1.1")
    again = deidentify(patient_dataset(), make_profile(), make_ctx()).dataset
    assert again.SOPInstanceUID == out_a.SOPInstanceUID
    assert out_a.file_meta.MediaStorageSOPInstanceUID == out_a.SOPInstanceUID


def test_remapped_uid_is_a_valid_2_25_uuid_uid() -> None:
    import uuid

    uid = remap_uid(SECRET, "1.2.3.4.5.6.7.8.9")
    assert uid.startswith("2.25.") and len(uid) <= 64
    assert uuid.UUID(int=int(uid[5:])).version == 8
    assert remap_uid(b"another-secret", "1.2.3.4.5.6.7.8.9") != uid


def test_retain_uids_keeps_originals() -> None:
    out = deidentify(patient_dataset(), make_profile([Option.RETAIN_UIDS]), make_ctx())
    assert out.dataset.StudyInstanceUID == "1.2.826.0.1.3680043.99.1.1"
    assert out.ok


def test_file_meta_and_preamble_are_new() -> None:
    original = patient_dataset()
    ds = FileDataset("in.dcm", original, file_meta=original.file_meta, preamble=b"x" * 128)
    ds.file_meta.ImplementationVersionName = "VENDOR_1"
    out = deidentify(ds, make_profile(), make_ctx()).dataset
    assert out.preamble == b"\0" * 128
    meta = out.file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == "TRIALSHIP_0"
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert meta.MediaStorageSOPClassUID == out.SOPClassUID


def test_report_names_tags_and_actions_but_no_values() -> None:
    result = deidentify(patient_dataset(), make_profile([Option.CLEAN_DESCRIPTORS]), make_ctx())
    text = json.dumps(result.report.to_dict())
    for value in ("Smithson", "Johanna", "MRN4711001", "19500315", "ACC99887766", "Springfield"):
        assert value.lower() not in text.lower()
    actions = {entry["keyword"]: entry["action"] for entry in result.report.to_dict()["entries"]}
    assert actions["StudyDescription"] == "cleaned"
    assert actions["PatientBirthDate"] == "emptied"
    assert result.dataset.StudyDescription == "CT chest for XXXXXXX XXXXXXXX"
