"""How combined codes, options and per-trial lists resolve to one action, by the Types of the
instance's IOD where the attribute is."""

from __future__ import annotations

import pytest
from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset
from pydicom.uid import (
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    CTImageStorage,
    EnhancedCTImageStorage,
    MRImageStorage,
    RTStructureSetStorage,
)

from trialship.deid import Action, Option, compile_rules, deidentify
from trialship.deid.iod_types import COMMON_TYPES, iod_type, types_for
from trialship.deid.report import DeidReport, ReportAction
from trialship.deid.rules import RuleSet, load_table, resolve_combined
from trialship.deid.values import dummy_value


def test_table_has_the_2025_scrape_plus_the_nine_newer_tags() -> None:
    table = load_table()
    assert len(table) == 647 + 9
    patterns = {rule.pattern for rule in table}
    assert {"(50XX,XXXX)", "(60XX,3000)", "(60XX,4000)", "(gggg,eeee) odd group"} <= patterns
    newer = {rule.tag: rule.basic for rule in table if rule.tag in (0x0040B020, 0x00700006)}
    assert newer == {0x0040B020: Action.X_D, 0x00700006: Action.D}


@pytest.mark.parametrize(
    ("code", "attribute_type", "expected"),
    [
        (Action.X_Z_D, "3", Action.X),
        (Action.X_Z_D, "2", Action.Z),
        (Action.X_Z_D, "1", Action.D),
        (Action.X_D, "2", Action.D),
        (Action.Z_D, "2", Action.Z),
        (Action.Z_D, "1", Action.D),
        (Action.X_Z, "2", Action.Z),
        (Action.X_Z_U, "3", Action.X),
        (Action.X_Z_U, "1", Action.U),
        (Action.K, "1", Action.K),
    ],
)
def test_combined_code_uses_first_letter_unless_type_needs_more(
    code: Action, attribute_type: str, expected: Action
) -> None:
    assert resolve_combined(code, attribute_type) is expected


def test_basic_profile_decisions_for_well_known_attributes() -> None:
    rules = compile_rules(frozenset())
    expected = {
        0x00100010: Action.Z,  # PatientName
        0x00100020: Action.Z,  # PatientID Z/D, Type 2
        0x00080080: Action.X,  # InstitutionName X/Z/D, Type 3
        0x0020000D: Action.U,  # StudyInstanceUID
        0x00081140: Action.X,  # ReferencedImageSequence X/Z/U*, Type 3
        0x00400555: Action.Z,  # AcquisitionContextSequence X/Z, Type 2
    }
    for tag, action in expected.items():
        decision = rules.decision_for(tag)
        assert decision is not None and decision.action is action, hex(tag)


def test_option_column_overrides_basic_and_most_retentive_option_wins() -> None:
    device_and_full = frozenset(
        {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_DEVICE_IDENTITY}
    )
    decision = compile_rules(device_and_full).decision_for(0x00181200)  # DateOfLastCalibration
    assert decision is not None
    assert decision.action is Action.K
    assert decision.source is Option.RETAIN_LONGITUDINAL_FULL_DATES
    # Modified Dates shifts what it names, also where Retain Device Identity would keep it.
    device_and_shift = frozenset(
        {Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.RETAIN_DEVICE_IDENTITY}
    )
    calibration = compile_rules(device_and_shift).decision_for(0x00181200)
    assert calibration is not None and calibration.action is Action.C
    assert calibration.source is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
    modified = compile_rules(frozenset({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}))
    shifted = modified.decision_for(0x00080020)
    assert shifted is not None and shifted.action is Action.C and shifted.basic is Action.Z


def test_repeating_groups_and_unlisted_tags() -> None:
    rules = compile_rules(frozenset({Option.CLEAN_GRAPHICS}))
    assert rules.decision_for(0x60023000) is rules.overlay_data
    assert rules.decision_for(0x601E4000) is rules.overlay_comments
    assert rules.decision_for(0x50100010) is rules.curve
    assert rules.overlay_data.action is Action.C
    assert rules.decision_for(0x60020010) is None  # OverlayRows: not listed, kept
    assert rules.decision_for(0x00280010) is None  # Rows


def test_per_trial_keep_and_remove_lists_override_the_table() -> None:
    rules = compile_rules(frozenset(), frozenset({"PatientBirthDate"}), frozenset({"Manufacturer"}))
    kept, removed = rules.decision_for(0x00100030), rules.decision_for(0x00080070)
    assert kept is not None and kept.action is Action.K and kept.override == "keep"
    assert removed is not None and removed.action is Action.X and removed.override == "remove"


def test_options_carry_their_cid_7050_codes() -> None:
    codes = {option.value: option.code for option in Option}
    assert codes["clean_pixel_data"] == "113101"
    assert codes["retain_institution_identity"] == "113112"
    assert len(set(codes.values())) == 12


# -- Types from the instance's IOD (PS3.15 E.1.1; iod_types.csv from highdicom) ----------------

SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"  # liver_1frame.dcm
FUNCTIONAL_GROUP = ("SharedFunctionalGroupsSequence", "DerivationImageSequence")


@pytest.mark.parametrize(
    ("sop_class", "path", "keyword", "expected"),
    [
        (RTStructureSetStorage, (), "OperatorsName", "2"),  # RT Series
        (CTImageStorage, (), "OperatorsName", "3"),  # General Series
        (EnhancedCTImageStorage, (), "DeviceSerialNumber", "1"),  # Enhanced General Equipment
        (SEGMENTATION, (), "DeviceSerialNumber", "1"),
        (CTImageStorage, (), "DeviceSerialNumber", "3"),  # General Equipment
        (EnhancedCTImageStorage, FUNCTIONAL_GROUP, "SourceImageSequence", "2"),
        (SEGMENTATION, FUNCTIONAL_GROUP, "SourceImageSequence", "2"),
        (EnhancedCTImageStorage, (), "SourceImageSequence", "3"),
        (BasicTextSRStorage, (), "ReferencedPerformedProcedureStepSequence", "2"),
        (ComprehensiveSRStorage, (), "ReferencedPerformedProcedureStepSequence", "2"),
        (ComprehensiveSRStorage, (), "ContentDate", "1"),  # SR Document General
        # General Image says 2, Multi-frame Functional Groups 1: the strictest wins.
        (SEGMENTATION, (), "ContentDate", "1"),
        (CTImageStorage, ("OtherPatientIDsSequence",), "PatientID", "1"),
    ],
)
def test_type_comes_from_the_iod_and_the_sequence_path(
    sop_class: str, path: tuple[str, ...], keyword: str, expected: str
) -> None:
    assert iod_type(sop_class, path, keyword) == expected


@pytest.mark.parametrize("sop_class", [None, "", "1.2.826.0.1.3680043.99.0.1"])
def test_an_unknown_sop_class_gets_the_common_module_types_at_any_depth(
    sop_class: str | None,
) -> None:
    assert types_for(sop_class) is COMMON_TYPES
    assert iod_type(sop_class, (), "PatientID") == "2"
    assert iod_type(sop_class, ("ReferencedStudySequence",), "PatientID") == "2"
    assert iod_type(sop_class, (), "OperatorsName") == "3"


def test_iods_with_the_same_types_share_one_table_and_one_rule_set() -> None:
    # Both have only the common modules' combined-code attributes of Type 1 or 2.
    ct, mr = types_for(CTImageStorage), types_for(MRImageStorage)
    assert ct is mr
    assert compile_rules(frozenset(), types=ct) is compile_rules(frozenset(), types=mr)
    assert types_for(RTStructureSetStorage) is not ct


def _action(rules: RuleSet, tag: int) -> Action:
    decision = rules.decision_for(tag)
    assert decision is not None
    return decision.action


def test_combined_codes_resolve_by_the_iod_where_the_attribute_is() -> None:
    rt = compile_rules(frozenset(), types=types_for(RTStructureSetStorage))
    ct = compile_rules(frozenset(), types=types_for(CTImageStorage))
    enhanced = compile_rules(frozenset(), types=types_for(EnhancedCTImageStorage))
    sr = compile_rules(frozenset(), types=types_for(BasicTextSRStorage))
    assert _action(rt, 0x00081070) is Action.Z  # OperatorsName X/Z/D, Type 2
    assert _action(ct, 0x00081070) is Action.X  # Type 3
    assert _action(enhanced, 0x00181000) is Action.D  # DeviceSerialNumber X/Z/D, Type 1
    assert _action(sr, 0x00081111) is Action.Z  # ReferencedPerformedProcedureStep X/Z/D
    derivation = enhanced.child(0x52009229).child(0x00089124)
    assert derivation.path == FUNCTIONAL_GROUP
    assert _action(derivation, 0x00082112) is Action.Z  # SourceImageSequence X/Z/U*, Type 2
    assert _action(enhanced, 0x00082112) is Action.X  # Type 3 at the top


def test_nested_rules_are_built_once_per_path_and_shared_below_the_table() -> None:
    enhanced = compile_rules(frozenset(), types=types_for(EnhancedCTImageStorage))
    shared = enhanced.child(0x52009229)
    assert enhanced.child(0x52009229) is shared
    unlisted = enhanced.child(0x00400555)  # AcquisitionContextSequence: nothing listed inside
    assert unlisted.child(0x0040A043) is unlisted  # ... nor deeper: every Type is 3
    assert _action(unlisted, 0x00081070) is Action.X
    common = compile_rules(frozenset())
    assert common.child(0x00081140) is common  # the fallback: the same Types at every depth


def test_a_per_trial_list_still_overrides_a_combined_code_inside_sequences() -> None:
    enhanced = compile_rules(
        frozenset(), frozenset(), frozenset({"SourceImageSequence"}), types_for(SEGMENTATION)
    )
    derivation = enhanced.child(0x52009229).child(0x00089124)
    decision = derivation.decision_for(0x00082112)
    assert decision is not None and decision.action is Action.X and decision.override == "remove"


# -- the same through the engine ---------------------------------------------------------------


def _instance(sop_class: str) -> Dataset:
    ds = patient_dataset()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    return ds


def _deidentified(ds: Dataset) -> tuple[Dataset, DeidReport]:
    result = deidentify(ds, make_profile(), make_ctx(), check_leaks=False)
    return result.dataset, result.report


def test_operators_name_is_emptied_in_an_rt_structure_set_and_removed_in_a_ct() -> None:
    for sop_class, kept in ((RTStructureSetStorage, True), (CTImageStorage, False)):
        # The same element twice in a row: what the walk remembers is per IOD's Types.
        ds = _instance(sop_class)
        ds.OperatorsName = "Tech^Tom"
        out, _ = _deidentified(ds)
        assert ("OperatorsName" in out) is kept, sop_class
        if kept:
            assert out.OperatorsName == ""


@pytest.mark.parametrize("sop_class", [EnhancedCTImageStorage, SEGMENTATION])
def test_device_serial_number_gets_a_dummy_in_enhanced_general_equipment(sop_class: str) -> None:
    ds = _instance(sop_class)
    ds.DeviceSerialNumber = "SN-4711"
    out, _ = _deidentified(ds)
    assert out.DeviceSerialNumber == dummy_value("LO")


def _source_image(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = uid
    return item


def test_source_image_sequence_is_emptied_in_a_derivation_functional_group() -> None:
    ds = _instance(SEGMENTATION)
    derivation = Dataset()
    derivation.SourceImageSequence = [_source_image("1.2.826.0.1.3680043.99.1.9")]
    group = Dataset()
    group.DerivationImageSequence = [derivation]
    ds.SharedFunctionalGroupsSequence = [group]
    ds.SourceImageSequence = [_source_image("1.2.826.0.1.3680043.99.1.8")]
    out, report = _deidentified(ds)
    inner = out.SharedFunctionalGroupsSequence[0].DerivationImageSequence[0]
    assert "SourceImageSequence" in inner and len(inner.SourceImageSequence) == 0
    assert "SourceImageSequence" not in out  # Type 3 at the top: removed
    paths = {entry.path: entry.action for entry in report.entries}
    nested = "SharedFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence"
    assert paths[nested] is ReportAction.EMPTIED
    assert paths["SourceImageSequence"] is ReportAction.REMOVED


@pytest.mark.parametrize("sop_class", [BasicTextSRStorage, ComprehensiveSRStorage])
def test_an_empty_referenced_performed_procedure_step_sequence_stays_in_an_sr(
    sop_class: str,
) -> None:
    ds = _instance(sop_class)
    ds.ReferencedPerformedProcedureStepSequence = []
    out, _ = _deidentified(ds)
    assert "ReferencedPerformedProcedureStepSequence" in out
    assert len(out.ReferencedPerformedProcedureStepSequence) == 0


def _overlay(ds: Dataset, group: int, *, data: bool = True) -> None:
    ds.add_new(group << 16 | 0x0010, "US", 8)  # OverlayRows
    ds.add_new(group << 16 | 0x0011, "US", 8)  # OverlayColumns
    ds.add_new(group << 16 | 0x0022, "LO", "Marker")  # OverlayDescription
    ds.add_new(group << 16 | 0x0040, "CS", "G")  # OverlayType
    ds.add_new(group << 16 | 0x0050, "SS", [1, 1])  # OverlayOrigin
    ds.add_new(group << 16 | 0x0100, "US", 1)  # OverlayBitsAllocated
    ds.add_new(group << 16 | 0x0102, "US", 0)  # OverlayBitPosition
    if data:
        ds.add_new(group << 16 | 0x3000, "OW", b"\xff" * 8)


@pytest.mark.parametrize("options", [(), (Option.CLEAN_GRAPHICS,)])
def test_removing_overlay_data_removes_its_whole_overlay_group(options: tuple[Option]) -> None:
    ds = _instance(MRImageStorage)
    _overlay(ds, 0x6000)
    _overlay(ds, 0x6002, data=False)  # no Overlay Data to remove: the group stays
    result = deidentify(ds, make_profile(options), make_ctx(), check_leaks=False)
    groups = {element.tag >> 16 for element in result.dataset}
    assert 0x6000 not in groups and 0x6002 in groups
    removed = {
        entry.keyword: entry.detail
        for entry in result.report.entries
        if entry.tag.startswith("(6000,") and entry.action is ReportAction.REMOVED
    }
    assert set(removed) == {
        "OverlayData",
        "OverlayRows",
        "OverlayColumns",
        "OverlayDescription",
        "OverlayType",
        "OverlayOrigin",
        "OverlayBitsAllocated",
        "OverlayBitPosition",
    }
    assert removed["OverlayRows"].endswith("; the group of the removed Overlay Data")


@pytest.mark.parametrize("options", [(), (Option.CLEAN_GRAPHICS,)])
def test_removing_curve_data_removes_its_whole_curve_group(options: tuple[Option]) -> None:
    ds = _instance(MRImageStorage)
    ds.add_new(0x50000005, "US", 2)  # CurveDimensions
    ds.add_new(0x50000010, "US", 2)  # NumberOfPoints
    ds.add_new(0x50000020, "CS", "ROI")  # TypeOfData
    ds.add_new(0x50003000, "OW", b"\x01\x00" * 4)  # CurveData
    result = deidentify(ds, make_profile(options), make_ctx(), check_leaks=False)
    assert not [element for element in result.dataset if element.tag >> 16 == 0x5000]
    details = {e.keyword: e.detail for e in result.report.entries if e.tag.startswith("(5000,")}
    # (the Basic Profile removes each element of the group itself; Clean Graphics cleans them,
    # and the curve's data cannot be cleaned: then the group goes with it)
    expected = "; the group of the removed Curve Data" if options else "X (basic)"
    assert details["CurveDimensions"].endswith(expected)
