"""Private attributes: removed, kept when known safe, or all kept on request."""

from __future__ import annotations

from deid_helpers import make_ctx, make_profile, patient_dataset
from pydicom.dataset import Dataset

from trialship.deid import Option, PrivateTags, deidentify


def _with_private() -> Dataset:
    ds = patient_dataset()
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")  # B value: safe (Table E.3.10-1)
    siemens.add_new(0x10, "LO", "unsafe text")
    other = ds.private_block(0x0029, "ACME NOTES", create=True)
    other.add_new(0x01, "LO", "note")
    nested = Dataset()
    block = nested.private_block(0x0043, "GEMS_PARM_01", create=True)
    block.add_new(0x39, "IS", ["1000", "0", "0", "0"])  # safe, inside a kept sequence
    nested.CodeValue = "X"
    ds.AnatomicRegionSequence = [nested]
    return ds


def _private_tags(ds: Dataset) -> set[int]:
    return {int(tag) for tag in list(ds.keys()) if tag >> 16 & 1}


def test_basic_profile_removes_every_private_attribute() -> None:
    out = deidentify(_with_private(), make_profile(), make_ctx()).dataset
    assert _private_tags(out) == set()
    assert _private_tags(out.AnatomicRegionSequence[0]) == set()


def test_retain_safe_private_keeps_safe_elements_and_their_creators() -> None:
    profile = make_profile([Option.RETAIN_SAFE_PRIVATE], private_tags=PrivateTags.RETAIN_SAFE)
    out = deidentify(_with_private(), profile, make_ctx()).dataset
    assert _private_tags(out) == {0x00190010, 0x0019100C}
    assert _private_tags(out.AnatomicRegionSequence[0]) == {0x00430010, 0x00431039}
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert "113111" in codes


def test_keep_policy_keeps_all_private_attributes() -> None:
    out = deidentify(_with_private(), make_profile(private_tags=PrivateTags.KEEP), make_ctx())
    assert len(_private_tags(out.dataset)) == 5
