"""Bad input: each file is de-identified correctly or rejected with its reason; the run goes on."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pydicom
import pytest
from deid_samples import PHI, Cli, instance, write
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _report(out: Path) -> dict[str, dict[str, str]]:
    report = json.loads((out / "deid-report.json").read_text())
    return {Path(entry["input"].split("!")[-1]).name: entry for entry in report["inputs"]}


def _nested(depth: int) -> Dataset:
    ds = instance(1, study="1.2.826.0.1.3680043.99.8.1")
    leaf = Dataset()
    leaf.CodeValue = "T-1"
    leaf.CodingSchemeDesignator = "SRT"
    leaf.CodeMeaning = "Chest"
    leaf.PatientID = PHI["patient_id"]  # PHI at the bottom of a kept sequence: removed there
    item = leaf
    for _ in range(depth - 1):
        outer = Dataset()
        outer.AnatomicRegionSequence = [item]
        item = outer
    ds.AnatomicRegionSequence = [item]
    return ds


def test_every_kind_of_bad_input_in_one_run(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = write(instance(1), src / "good.dcm")
    (src / "empty.dcm").write_bytes(b"")
    (src / "notes.txt").write_text("not DICOM at all, Smithson")
    whole = good.read_bytes()
    (src / "truncated.dcm").write_bytes(whole[: len(whole) - 40])
    implicit = instance(2)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    write(implicit, src / "implicit.dcm")
    big = instance(3)
    big.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    write(big, src / "bigendian.dcm")
    deflated = instance(4)
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    write(deflated, src / "deflated.dcm")
    no_meta = instance(5)
    del no_meta.file_meta
    write(no_meta, src / "nometa.dcm", enforce=False, implicit_vr=True, little_endian=True)
    for name in ("JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        (src / name).symlink_to(get_testdata_file(name))
    accents = instance(6, name="Müller-Lüdenscheidt^Zoë")
    write(accents, src / "accents.dcm")
    malformed = instance(7, name="^^^==^Smithson^^^^^^^^^")
    write(malformed, src / "malformed_name.dcm")
    write(_nested(10), src / "nested10.dcm")
    write(instance(1, pixels=b"\x20\x00" * 64), src / "same_uid_other_content.dcm")
    (src / "z_copy_of_good.dcm").write_bytes(whole)
    with zipfile.ZipFile(src / "evil.zip", "w") as archive:
        archive.writestr("../escape.dcm", whole)
        archive.writestr("/abs.dcm", whole)
        archive.writestr("inside/ok.dcm", _bytes(instance(8), tmp_path))
    with zipfile.ZipFile(src / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.dcm", b"\0" * (64 << 20))

    out = tmp_path / "out"
    result = cli.deid(str(src), out=out)
    assert result.exit_code == 3, result.output
    status = _report(out)
    done = {name for name, entry in status.items() if entry["status"] == "deidentified"}
    assert done >= {
        "good.dcm",
        "implicit.dcm",
        "bigendian.dcm",
        "deflated.dcm",
        "nometa.dcm",
        "JPEG2000.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "accents.dcm",
        "malformed_name.dcm",
        "nested10.dcm",
        "ok.dcm",
    }
    reasons = {name: entry.get("reason", "") for name, entry in status.items()}
    assert "0 bytes" in reasons["empty.dcm"]
    assert "not DICOM" in reasons["notes.txt"]
    assert "truncated" in reasons["truncated.dcm"]
    assert "different content" in reasons["same_uid_other_content.dcm"]
    assert status["z_copy_of_good.dcm"]["status"] == "duplicate"
    assert "'..'" in reasons["escape.dcm"]
    assert "absolute" in reasons["abs.dcm"]
    assert "zip bomb" in reasons["zeros.dcm"]
    assert "rejected: " in result.output
    for name in done:
        path = out / status[name]["output"]
        data = path.read_bytes().lower()
        own_name = ["müller", "lüdenscheidt"] if name == "accents.dcm" else ["smithson"]
        for value in ["mrn4711001", "acc99887766", *own_name]:
            for encoded in {value.encode("utf-8"), value.encode("latin-1")}:
                assert encoded not in data, (name, value)
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.ClinicalTrialSubjectID == "ACM-0001"
    implicit_out = pydicom.dcmread(out / status["implicit.dcm"]["output"])
    assert implicit_out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert implicit_out.PixelData == b"\x10\x00" * 64
    big_out = pydicom.dcmread(out / status["bigendian.dcm"]["output"])
    assert big_out.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    source = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    assert pydicom.dcmread(out / status["JPEG2000.dcm"]["output"]).PixelData == source.PixelData
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix in {".part", ".zipentry"}]
    assert leftovers == []


def _bytes(ds: Dataset, tmp: Path) -> bytes:
    path = write(ds, tmp / "zip-member.dcm")
    data = path.read_bytes()
    path.unlink()
    return data


def test_a_leak_rejects_the_file_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    ds = instance(1)
    ds.Manufacturer = "scanner of Smithson lab"  # kept by the profile: the leak check must catch it
    write(ds, tmp_path / "src" / "leaky.dcm")
    out = tmp_path / "out"
    result = cli.deid(str(tmp_path / "src"), out=out)
    assert result.exit_code == 3
    entry = _report(out)["leaky.dcm"]
    assert entry["status"] == "rejected" and "leak check failed" in entry["reason"]
    assert "Manufacturer" in entry["reason"] and "Smithson" not in entry["reason"]
    assert list(out.rglob("*.dcm")) == []
