"""De-identified-looking DICOM test files: synthetic CT and pydicom's bundled (compressed) ones."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
# Several SOP classes and transfer syntaxes: Explicit LE, JPEG baseline, JPEG 2000, RLE.
BUNDLED = (
    "CT_small.dcm",
    "MR_small.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG2000.dcm",
    "examples_ybr_color.dcm",
    "MR_small_RLE.dcm",
)


def mark_deidentified(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "trialship test"
    ds.PatientName = "SUBJ^001"
    ds.PatientID = "SUBJ-001"


def bundled_files(folder: Path, *, identified: bool = False) -> list[Path]:
    """pydicom's test files, re-saved with fresh UIDs (pixels untouched, still compressed)."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    paths = []
    for name in BUNDLED:
        source = get_testdata_file(name)
        assert source is not None, name
        ds = dcmread(source)
        if not identified:
            mark_deidentified(ds)
        ds.StudyInstanceUID = study
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def ct_file(
    path: Path,
    *,
    size: int = 20_000,
    study: str | None = None,
    series: str | None = None,
    identified: bool = False,
    pixels: bytes | None = None,
) -> Path:
    """A synthetic CT of about `size` bytes (random pixels)."""
    rows = 256 if size < 16_000_000 else 4096
    columns = max(1, size // (rows * 2))
    ds = Dataset()
    ds.SOPClassUID = UID(CT_IMAGE)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.Modality = "CT"
    ds.PatientName, ds.PatientID = "DOE^JANE", "MRN-123"
    if not identified:
        mark_deidentified(ds)
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels if pixels is not None else os.urandom(rows * columns * 2)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ct_tree(root: Path, count: int, *, size: int = 20_000, per_series: int = 100) -> list[Path]:
    study = generate_uid()
    block = os.urandom(size)
    paths = []
    series = ""
    for n in range(count):
        if n % per_series == 0:
            series = generate_uid()
        folder = root / f"series{n // per_series:03d}"
        paths.append(
            ct_file(
                folder / f"im{n:05d}.dcm",
                size=size,
                study=study,
                series=series,
                pixels=block[: (size // 512) * 512],
            )
        )
    return paths
