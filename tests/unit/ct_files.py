"""A small synthetic CT instance as the bytes of a file, for the reader's tests."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian


def ct_file(
    *,
    syntax: UID = ExplicitVRLittleEndian,
    rows: int = 2,
    columns: int = 2,
    frames: int | None = None,
    pixels: bytes = b"\x01\x00" * 4,
    **values: str,
) -> bytes:
    """A CT image of `rows` x `columns` (x `frames`) at 16 bits, with `values` (keyword=value)
    in its header, saved with file meta in `syntax`."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = rows, columns
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = pixels
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
