"""Packages (paths, hashes, headers), the guard, C-STORE context groups and STOW-RS answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from trialship.errors import ValidationError
from trialship.transfer import IdentifiedDataRefused, build_package, check_package
from trialship.transfer.dicomweb import batches, outcomes_from_response
from trialship.transfer.dimse import MAX_CONTEXTS, context_groups
from trialship.transfer.package import DicomHeader, PackageFile


def _dicom(path: Path, *, removed: str | None = "YES", syntax: UID = ExplicitVRLittleEndian,
           sop_class: str = "1.2.840.10008.5.1.4.1.1.7") -> Path:  # fmt: skip
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    if removed is not None:
        ds.PatientIdentityRemoved = removed
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_folders_are_sent_by_their_contents_files_by_name_hidden_files_never(
    tmp_path: Path,
) -> None:
    a = _dicom(tmp_path / "exam" / "s1" / "1.dcm")
    _dicom(tmp_path / "exam" / ".trialship-partial" / "x.dcm")
    single = _dicom(tmp_path / "other" / "2.dcm", syntax=JPEGBaseline8Bit)
    package = build_package([tmp_path / "exam", single])
    assert [f.remote for f in package.files] == ["s1/1.dcm", "2.dcm"]
    first = package.files[0]
    assert first.sha256 == hashlib.sha256(a.read_bytes()).hexdigest()
    assert first.size == a.stat().st_size
    assert first.dicom is not None and first.dicom.identity_removed == "YES"
    assert package.files[1].dicom.transfer_syntax_uid == JPEGBaseline8Bit  # type: ignore[union-attr]
    assert package.manifest().decode().splitlines()[0] == f"{first.sha256}  s1/1.dcm"


def test_two_files_on_one_remote_path_are_refused(tmp_path: Path) -> None:
    _dicom(tmp_path / "a" / "x.dcm")
    _dicom(tmp_path / "b" / "x.dcm")
    with pytest.raises(ValidationError, match=r"would both be sent as x\.dcm"):
        build_package([tmp_path / "a", tmp_path / "b"])


def test_the_guard_names_every_refused_file_with_its_reason(tmp_path: Path) -> None:
    _dicom(tmp_path / "ok.dcm")
    _dicom(tmp_path / "missing.dcm", removed=None)
    _dicom(tmp_path / "no.dcm", removed="NO")
    (tmp_path / "readme.txt").write_text("hello")
    package = build_package([tmp_path])
    with pytest.raises(IdentifiedDataRefused) as caught:
        check_package(package)
    assert caught.value.refused == [
        ("missing.dcm", "PatientIdentityRemoved is missing"),
        ("no.dcm", "PatientIdentityRemoved is 'NO'"),
        ("readme.txt", "not a DICOM file, de-identification cannot be checked"),
    ]
    check_package(package, allow_identified=True)


def _fake(n: int, sop_class: str, syntax: str, size: int = 10) -> PackageFile:
    header = DicomHeader(sop_class, f"1.2.{n}", syntax, "YES")
    return PackageFile(Path(f"/x/{n}"), f"{n}.dcm", size, "00", header)


def test_more_than_128_context_pairs_are_split_into_several_associations() -> None:
    files = [_fake(n, f"1.2.840.{n % 200}", ExplicitVRLittleEndian) for n in range(400)]
    groups = context_groups(files)
    assert sum(len(g) for g in groups) == 400 and len(groups) == 2
    for group in groups:
        pairs = {(f.dicom.sop_class_uid, f.dicom.transfer_syntax_uid) for f in group}  # type: ignore[union-attr]
        assert len(pairs) <= MAX_CONTEXTS


def test_stow_batches_respect_count_and_bytes() -> None:
    files = [_fake(n, "1.2", ExplicitVRLittleEndian, size=40) for n in range(7)]
    assert [len(b) for b in batches(files, 3, 1000)] == [3, 3, 1]
    assert [len(b) for b in batches(files, 50, 100)] == [2, 2, 2, 1]


def test_stow_answer_gives_each_instance_its_state() -> None:
    files = [_fake(n, "1.2", ExplicitVRLittleEndian) for n in range(3)]
    answer = {
        "00081199": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.2.0"]}},
            {"00081155": {"vr": "UI", "Value": ["1.2.1"]},
             "00081196": {"vr": "US", "Value": [0xB000]}},
        ]},
        "00081198": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.2.2"]},
             "00081197": {"vr": "US", "Value": [0xA700]}},
        ]},
    }  # fmt: skip
    states = [(f.remote, state, detail.get("status") or detail.get("reason"))
              for f, state, detail in outcomes_from_response(files, answer)]  # fmt: skip
    assert states == [
        ("0.dcm", "stored", None),
        ("1.dcm", "warning", "0xB000"),
        ("2.dcm", "failed", "0xA700"),
    ]
