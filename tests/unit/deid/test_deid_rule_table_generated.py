"""Every row of Table E.1-1, with no option and with each option, at the top level and inside a
kept sequence: the action the table decides is the action the engine applies."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from deid_helpers import SHIFT, make_ctx, make_profile
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from trialship.deid import Action, Option, compile_rules, deidentify
from trialship.deid.dates import shift_da, shift_dt
from trialship.deid.profile import MANAGED_KEYWORDS
from trialship.deid.rules import load_table
from trialship.deid.values import dummy_value

# Rewritten after the profile at the top level (trial identity, method, media keys).
TOP_LEVEL_REWRITTEN = MANAGED_KEYWORDS | {
    "InstitutionName",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
    "Modality",
    "SpecificCharacterSet",
}
# A standard sequence that Table E.1-1 does not list: kept, with the rules applied to its items.
CONTAINER = "AnatomicRegionSequence"

SAMPLES: dict[str, Any] = {
    "AE": "STATION_A",
    "AS": "045Y",
    "AT": 0x00100010,
    "CS": "VALUE_A",
    "DA": "20200115",
    "DS": "1.5",
    "DT": "20200115123000.000000+0100",
    "FD": 1.5,
    "FL": 1.5,
    "IS": "12",
    "LO": "Some long text",
    "LT": "Some long text",
    "OB": b"\x01\x02",
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 4,
    "OL": b"\x00" * 4,
    "OV": b"\x00" * 8,
    "OW": b"\x01\x02",
    "PN": "Roe^Richard",
    "SH": "Short text",
    "SL": -3,
    "SS": -3,
    "ST": "Some short text",
    "SV": -3,
    "TM": "123000",
    "UC": "Unlimited chars",
    "UI": "1.2.826.0.1.3680043.99.7.7",
    "UL": 3,
    "UN": b"\x01\x02",
    "UR": "http://example.invalid/x",
    "US": 3,
    "UT": "Unlimited text",
    "UV": 3,
}
BINARY = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag).split(" ")[0]
    except KeyError:
        return None


ROWS = [
    rule
    for rule in load_table()
    if rule.tag is not None and rule.keyword and _vr(rule.tag) and rule.tag >> 16 != 0x0002
]


def _cases() -> list[Any]:
    cases = []
    for rule in ROWS:
        for where in ("top", "nested"):
            if where == "top" and rule.keyword in TOP_LEVEL_REWRITTEN:
                continue
            cases.append(pytest.param(rule, None, where, id=f"{rule.keyword}-basic-{where}"))
            for option, _ in rule.by_option:
                tag_id = f"{rule.keyword}-{option.value}-{where}"
                cases.append(pytest.param(rule, option, where, id=tag_id))
    return cases


@functools.cache
def _profile(option: Option | None) -> Any:
    return make_profile([option] if option else [])


def _sample(vr: str) -> Any:
    if vr == "SQ":
        item = Dataset()
        item.CodeValue = "T-D0050"
        item.CodingSchemeDesignator = "SRT"
        item.CodeMeaning = "Tissue"
        return [item]
    return SAMPLES[vr]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == b"" or len(value) == 0


def _effect(action: Action, source: Option | None, basic: Action, vr: str) -> str:
    if action is not Action.C:
        return action.value
    if source is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES:
        if vr in {"DA", "DT"}:
            return "shift"
        return "K" if vr == "TM" else basic.value
    if vr in BINARY:
        return basic.value
    return "C"


@pytest.mark.parametrize(("rule", "option", "where"), _cases())
def test_table_row_action_is_applied(rule: Any, option: Option | None, where: str) -> None:
    vr = _vr(rule.tag)
    assert vr is not None
    original = _sample(vr)
    ds = Dataset()
    if where == "top":
        container = ds
    else:
        container = Dataset()
        container.CodeValue = "T-11000"
        container.CodingSchemeDesignator = "SRT"
        container.CodeMeaning = "Region"
        setattr(ds, CONTAINER, [container])
    container.add(DataElement(rule.tag, vr, original))

    profile = _profile(option)
    result = deidentify(ds, profile, make_ctx(), check_leaks=False)
    out = result.dataset if where == "top" else getattr(result.dataset, CONTAINER)[0]

    decision = compile_rules(profile.options).decision_for(rule.tag)
    assert decision is not None
    effect = _effect(decision.action, decision.source, decision.basic, vr)
    if effect == "D" and vr == "UI":
        effect = "U"
    present = rule.tag in out
    value = out[rule.tag].value if present else None
    if effect == "X":
        assert not present
    elif effect == "Z":
        assert present and _empty(value)
    elif effect == "D":
        assert present and not _empty(value)
        if vr != "SQ":
            assert value == dummy_value(vr) or value != original
    elif effect == "K":
        assert present
        if vr != "SQ":
            assert value == original
    elif effect == "U":
        if vr == "SQ":
            assert present
        else:
            assert present and str(value).startswith("2.25.")
            assert value != original
    elif effect == "shift":
        shift = shift_da if vr == "DA" else shift_dt
        assert value == shift(original, SHIFT)
    else:
        assert effect == "C"
        assert present and not _empty(value)
