"""What may go on which disc: non-image records, DVD levels, transfer syntaxes, stray files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest
from media_samples import KEY_OBJECT, Series, write_image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from trialship.media.build import DiscFile, build_disc
from trialship.media.capacity import Medium
from trialship.media.convert import to_explicit_vr_little_endian
from trialship.media.dicomdir import entry_from_file, number_entries
from trialship.media.errors import MediaError
from trialship.media.iso import ImageFile, write_iso
from trialship.media.manifest import ManifestRow, hash_bytes
from trialship.media.verify import verify_image


def key_object(path: Path, series: Series) -> Path:
    """A Key Object Selection in the same study: it needs a KEY OBJECT DOC record."""
    ds = pydicom.dcmread(write_image(path, series, 1))
    del ds.PixelData
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "ImageType"):
        delattr(ds, keyword)
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.SOPClassUID = UID(KEY_OBJECT)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "KO"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 99
    ds.ContentDate, ds.ContentTime = series.study_date, "120000"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113000", "DCM", "Of Interest"
    ds.ConceptNameCodeSequence = Sequence([code])
    ds.ValueType = "CONTAINER"
    ds.save_as(path, enforce_file_format=True)
    return path


def disc_files(paths: list[Path]) -> list[DiscFile]:
    by_uid = {}
    entries = []
    for path in paths:
        e = entry_from_file(path)
        by_uid[e.sop_instance_uid] = path
        entries.append(e)
    numbered = number_entries(entries)
    return [DiscFile(str(by_uid[e.sop_instance_uid]), e.file_id, e) for e in numbered if e.file_id]


def build(paths: list[Path], out: Path, medium: Medium) -> Path:
    return build_disc(
        disc_files(paths),
        out,
        fileset_id="TRIAL01",
        fileset_uid=generate_uid(),
        medium=medium,
        readme_text="readme",
    ).path


def test_a_key_object_gets_a_record_dciodvfy_accepts(
    dicom_files: list[Path], tmp_path: Path, tools: dict[str, str]
) -> None:
    first = pydicom.dcmread(dicom_files[0])
    series = Series(first.PatientID, first.StudyInstanceUID, first.StudyDate, "", 1, "CT", 1)
    ko = key_object(tmp_path / "ko.dcm", series)
    image = build([*dicom_files, ko], tmp_path / "ko.iso", Medium.CD80)
    folder = tmp_path / "x"
    subprocess.run(
        ["osirrox", "-indev", str(image), "-extract", "/", str(folder)],
        check=True,
        capture_output=True,
    )
    dump = subprocess.run(["dcdirdmp", str(folder / "DICOMDIR")], capture_output=True, text=True)
    assert "KEY OBJECT DOC" in dump.stdout + dump.stderr
    result = subprocess.run(["dciodvfy", str(folder / "DICOMDIR")], capture_output=True, text=True)
    report = result.stdout + result.stderr
    assert [line for line in report.splitlines() if line.startswith("Error")] == [], report


def test_a_dvd_image_uses_level_3_and_still_checks(
    dicom_files: list[Path], tmp_path: Path, tools: dict[str, str]
) -> None:
    image = build(dicom_files, tmp_path / "dvd.iso", Medium.DVD)
    info = subprocess.run(["isoinfo", "-d", "-i", str(image)], capture_output=True, text=True)
    assert "Volume id: TRIAL01" in info.stdout
    assert verify_image(image, medium=Medium.DVD).files_checked == 22


def test_an_implicit_vr_file_is_refused_on_cd_until_converted(
    dicom_files: list[Path], tmp_path: Path
) -> None:
    first = pydicom.dcmread(dicom_files[0])
    series = Series(
        first.PatientID,
        first.StudyInstanceUID,
        first.StudyDate,
        first.SeriesInstanceUID,
        first.SeriesNumber,
        "CT",
        1,
    )
    implicit = write_image(
        tmp_path / "implicit.dcm", series, 9, transfer_syntax=ImplicitVRLittleEndian
    )
    with pytest.raises(MediaError, match="Explicit VR Little Endian only: convert the file or put"):
        build([*dicom_files, implicit], tmp_path / "cd.iso", Medium.CD80)
    assert not (tmp_path / "cd.iso").exists()

    converted = tmp_path / "converted.dcm"
    assert to_explicit_vr_little_endian(implicit, converted)
    after = pydicom.dcmread(converted)
    assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert after.PixelData == pydicom.dcmread(implicit).PixelData  # pixels untouched
    build([*dicom_files, converted], tmp_path / "cd.iso", Medium.CD80)
    assert not to_explicit_vr_little_endian(converted, tmp_path / "again.dcm")


def test_a_file_not_in_the_manifest_fails_the_check(tmp_path: Path) -> None:
    readme = b"hello\r\n"
    image = tmp_path / "stray.iso"
    write_iso(
        image,
        [ImageFile("README.TXT", readme), ImageFile("EXTRA", b"not listed")],
        volume_id="T",
        medium=Medium.CD80,
    )
    rows = [ManifestRow("README.TXT", "", *hash_bytes(readme))]
    with pytest.raises(MediaError, match=r"/EXTRA\.;1 is on the disc image .* not in the manifest"):
        verify_image(image, rows)


def test_an_image_larger_than_the_medium_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "big.iso"
    with image.open("wb") as fp:
        fp.truncate(Medium.CD74.bytes + 2048)  # sparse: no real disk space used
    with pytest.raises(MediaError, match="more than a CD-R 74 min holds"):
        verify_image(image, [], medium=Medium.CD74)


def test_an_unwritable_target_raises_media_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MediaError, match=r"blocked\.iso"):
        write_iso(
            blocker / "blocked.iso", [ImageFile("A", b"a")], volume_id="T", medium=Medium.CD80
        )
