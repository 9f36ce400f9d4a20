"""How combined codes, options and per-trial lists resolve to one action."""

from __future__ import annotations

import pytest

from trialship.deid import Action, Option, compile_rules
from trialship.deid.rules import load_table, resolve_combined


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
    both = frozenset(
        {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
    )
    decision = compile_rules(both).decision_for(0x00080020)
    assert decision is not None
    assert decision.action is Action.K
    assert decision.source is Option.RETAIN_LONGITUDINAL_FULL_DATES
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
