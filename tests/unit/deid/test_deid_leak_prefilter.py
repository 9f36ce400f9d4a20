"""The leak check's raw-bytes prefilter never hides a leak the exact rules would report."""

from __future__ import annotations

import os
import re
import warnings

import pydicom
import pytest
from deid_helpers import patient_dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files

from trialship.deid import Identifiers, collect_identifiers, find_leaks
from trialship.deid.matching import Prefilter


def _leaks(path: str, planted: object) -> list[tuple[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, defer_size="2 KB")
    identifiers = collect_identifiers(ds)
    identifiers = identifiers.__class__(
        **{**identifiers.__dict__, **planted}  # type: ignore[arg-type]
    )
    return sorted((leak.kind, leak.path) for leak in find_leaks(ds, identifiers))


@pytest.mark.parametrize(
    "planted",
    [{}, {"ids": frozenset({"1.2", "ct"})}, {"phones": frozenset({"0000000"})}],
    ids=["own", "common-ids", "phone"],
)
@pytest.mark.filterwarnings("ignore")
def test_prefilter_and_exact_rules_agree_on_pydicom_files(
    planted: dict[str, frozenset[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = [p for p in get_testdata_files() if p.endswith(".dcm") and os.path.isfile(p)]
    small = [p for p in found if os.path.getsize(p) < 100_000]
    paths = [p for p in small if "no_meta" not in p][:25]
    fast = {}
    for path in paths:
        try:
            fast[path] = _leaks(path, planted)
        except Exception:  # unreadable test files are not the subject here
            continue
    monkeypatch.setattr(Prefilter, "maybe", lambda self, text: True)
    for path, found in fast.items():
        assert found == _leaks(path, planted), path


def test_prefilter_passes_non_ascii_and_phone_digits_through() -> None:
    prefilter = Prefilter(collect_identifiers(patient_dataset()))
    assert prefilter.maybe("call 555 867-5309 today")
    assert prefilter.maybe("SMITHSON")
    assert prefilter.maybe("\u017fmithson")  # long s, not ASCII: the exact rules decide
    assert not prefilter.maybe("Axial 5mm")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=200))
def test_the_phone_prefilter_finds_the_digits_the_exact_rule_finds(text: str) -> None:
    digits = re.sub(r"\D", "", text)
    phone = digits[len(digits) // 3 : len(digits) // 3 + 7] or "5558675"
    prefilter = Prefilter(Identifiers(phones=frozenset({phone, "0123456"})))
    expected = phone in digits or "0123456" in digits
    assert prefilter.maybe(text) is expected


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(
        st.sampled_from(["", "", " ", ".", "-", "\t", "x", "  "]), min_size=9, max_size=9
    ),
    before=st.sampled_from(["", "see ", "a", "1", "("]),
    after=st.sampled_from(["", " ok", "b", "2", ")"]),
    upper=st.booleans(),
)
def test_the_prefilter_passes_every_text_the_spaced_id_rule_matches(
    gaps: list[str], before: str, after: str, upper: bool
) -> None:
    from trialship.deid.matching import IdentifierPatterns

    mrn = "mrn4711001"
    spelled = "".join(char + gap for char, gap in zip(mrn, [*gaps, ""], strict=True))
    text = before + (spelled.upper() if upper else spelled) + after
    identifiers = Identifiers(ids=frozenset({mrn}))
    spaced = IdentifierPatterns(identifiers).spaced_ids
    assert spaced is not None
    if spaced.search(text):
        assert Prefilter(identifiers).maybe(text)
    if (
        "x" not in gaps
        and "  " not in gaps
        and before[-1:] in ("", " ", "(")
        and after[:1]
        in (
            "",
            " ",
            ")",
        )
    ):
        assert spaced.search(text), text  # (one separator at most between two characters)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_separators_are_taken_out_as_the_spaced_id_pattern_allows_them(text: str) -> None:
    from trialship.deid.matching import _SEPARATORS, without_separators

    assert without_separators(text) == _SEPARATORS.sub("", text)
    assert without_separators(text.encode("ascii", "replace").decode()) == _SEPARATORS.sub(
        "", text.encode("ascii", "replace").decode()
    )
