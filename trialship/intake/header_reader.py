"""A fast reader for the common header: Explicit VR Little Endian, parsed from the file's bytes
into the very objects pydicom's ``dcmread(fp, stop_before_pixels=True)`` builds.

The file-level steps mirror `pydicom.filereader.read_partial` (preamble, file meta and the
conversions pydicom makes while reading it, transfer syntax, data set); the elements are parsed by
`trialship.deid.raw_parse`. Sequences of defined length stay raw, as pydicom leaves them. Anything
not handled exactly like pydicom returns None and pydicom reads the file: no preamble, implicit
VR, big endian, deflate, private transfer syntaxes, command sets, and all that `raw_parse` leaves
to pydicom.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pydicom.charset import default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)

from trialship.deid.raw_parse import (
    HEADER,
    LENGTH,
    LONG_VRS,
    UNDEFINED,
    VRS,
    Unusual,
    empty,
    implicit_at,
    own_encoding,
    parse_elements,
    pydicom_as_shipped,
    tag_key,
)

_NOT_EXPLICIT_LE = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
)


def read_header(fp: BinaryIO, data: bytes) -> FileDataset | None:
    """The header pydicom would read from `fp` (a file or buffer positioned at 0 whose bytes are
    `data`), with `fp` left where pydicom would leave it (at the pixel data tag, or the end);
    None, with `fp` untouched, when pydicom must read it."""
    try:
        ds, position = _read(fp, data)
    except Exception:  # Unusual, or anything pydicom may report in its own way: let it read
        return None
    fp.seek(position)
    return ds


def _read(fp: BinaryIO, data: bytes) -> tuple[FileDataset, int]:
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unusual
    if not pydicom_as_shipped():
        raise Unusual  # custom reading hooks: only pydicom knows what they do
    meta_elements, start = _meta_elements(data)
    meta = Dataset(meta_elements, parent_encoding=default_encoding)
    meta.set_original_encoding(False, True, default_encoding)
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(
        is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding
    )
    if file_meta._dict:
        file_meta[min(file_meta._dict)]  # pydicom converts the first element (by tag) to test it
        if "FileMetaInformationGroupLength" in file_meta:
            file_meta.FileMetaInformationGroupLength  # noqa: B018 (pydicom reads it: converted)
    if start + 8 > len(data) or data[start : start + 2] == b"\0\0":
        raise Unusual  # nothing after the file meta, or a command set
    syntax = file_meta.get("TransferSyntaxUID")
    if syntax is None or syntax in _NOT_EXPLICIT_LE or syntax in PrivateTransferSyntaxes:
        raise Unusual
    if implicit_at(data, start, len(data)):
        raise Unusual  # pydicom would switch to implicit VR (with a warning)
    elements, end = parse_elements(
        data, start, len(data), limit=len(data), encoding=default_encoding, offset=0, top=True
    )
    dataset = Dataset(elements, parent_encoding=default_encoding)
    dataset.set_original_encoding(False, True, own_encoding(elements, default_encoding))
    ds = FileDataset(fp, dataset, data[:128], file_meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds, end


def _meta_elements(data: bytes) -> tuple[dict[BaseTag, Any], int]:
    """Group 0002 from offset 132: explicit VR little endian, defined lengths only."""
    elements: dict[BaseTag, Any] = {}
    position = 132
    if implicit_at(data, position, len(data)) and data[position : position + 2] == b"\2\0":
        raise Unusual
    while position + 8 <= len(data):
        group, element, vr_bytes, length = HEADER.unpack_from(data, position)
        if group != 2:
            return elements, position
        vr = VRS.get(vr_bytes)
        if vr is None:
            raise Unusual
        value_tell = position + 8
        if vr in LONG_VRS:
            (length,) = LENGTH.unpack_from(data, value_tell)
            value_tell += 4
        if length == UNDEFINED or value_tell + length > len(data):
            raise Unusual
        tag = tag_key(group << 16 | element)
        value = data[value_tell : value_tell + length] if length else empty(vr)
        elements[tag] = RawDataElement(tag, vr, length, value, value_tell, False, True)
        position = value_tell + length
    raise Unusual  # the file ends inside or right after the file meta
