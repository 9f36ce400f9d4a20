"""PS3.10 File IDs, File-set IDs and the ISO names they become."""

from __future__ import annotations

import pytest

from trialship.media.errors import FileIdError
from trialship.media.fileid import (
    FileId,
    assign_file_ids,
    instance_file_id,
    is_conformant_component,
    validate_volume_id,
)


@pytest.mark.parametrize("name", ["A", "DICOM", "I0000001", "P_1", "12345678"])
def test_conformant_components(name: str) -> None:
    assert is_conformant_component(name)


@pytest.mark.parametrize("name", ["", "dicom", "IMAGE0001", "A-B", "A.B", "É", "A B"])
def test_non_conformant_components(name: str) -> None:
    assert not is_conformant_component(name)


def test_instance_file_id_is_the_documented_layout() -> None:
    fid = instance_file_id(1, 2, 3, 4)
    assert fid.posix == "DICOM/P0000001/S0000002/E0000003/I0000004"
    assert fid.iso_path == "/DICOM/P0000001/S0000002/E0000003/I0000004.;1"
    assert fid.directories == (
        "/DICOM",
        "/DICOM/P0000001",
        "/DICOM/P0000001/S0000002",
        "/DICOM/P0000001/S0000002/E0000003",
    )


def test_a_lower_case_component_is_refused_with_the_rule() -> None:
    with pytest.raises(FileIdError, match=r"'im0001' of DICOM/im0001 is not allowed.*A-Z, 0-9"):
        FileId(("DICOM", "im0001"))


def test_at_most_eight_components() -> None:
    FileId(("A",) * 8)
    with pytest.raises(FileIdError, match="at most 8"):
        FileId(("A",) * 9)


def test_parse_accepts_either_separator() -> None:
    assert FileId.parse("DICOM\\P0000001\\I1") == FileId.parse("DICOM/P0000001/I1")


def test_assign_numbers_in_order_of_first_appearance_and_restarts_per_parent() -> None:
    ids = assign_file_ids(
        [
            ("PAT_B", "st1", "se1", "i1"),
            ("PAT_B", "st1", "se1", "i2"),
            ("PAT_B", "st1", "se2", "i3"),
            ("PAT_A", "st2", "se3", "i4"),
            ("PAT_B", "st5", "se4", "i5"),
        ]
    )
    assert {k: v.posix for k, v in ids.items()} == {
        "i1": "DICOM/P0000001/S0000001/E0000001/I0000001",
        "i2": "DICOM/P0000001/S0000001/E0000001/I0000002",
        "i3": "DICOM/P0000001/S0000001/E0000002/I0000001",
        "i4": "DICOM/P0000002/S0000001/E0000001/I0000001",
        "i5": "DICOM/P0000001/S0000002/E0000001/I0000001",
    }


def test_assign_refuses_a_repeated_instance() -> None:
    with pytest.raises(FileIdError, match="listed twice"):
        assign_file_ids([("P", "s", "e", "i1"), ("P", "s", "e", "i1")])


@pytest.mark.parametrize("value", ["", "TRIAL01", "TRIAL_01_DISC_01", "TRIAL01   "])
def test_valid_fileset_ids(value: str) -> None:
    assert validate_volume_id(value) == value.rstrip()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("trial-01", "A-Z, 0-9 and _ only"),
        ("TRIAL 01", "A-Z, 0-9 and _ only"),
        ("TRIAL01_DISC_0001", "longer than 16"),
    ],
)
def test_invalid_fileset_ids(value: str, reason: str) -> None:
    with pytest.raises(FileIdError, match=reason):
        validate_volume_id(value)
