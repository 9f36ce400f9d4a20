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

import io
import os
from typing import Any, BinaryIO

from pydicom import config
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

from trialship.deid.datasets import new_dataset
from trialship.deid.raw_parse import (
    HEADER,
    LENGTH,
    LONG_VRS,
    UNDEFINED,
    VRS,
    Unusual,
    empty,
    implicit_at,
    parse_elements,
    pydicom_as_shipped,
    tag_key,
)

_CHARSET = tag_key(0x00080005)
_RAW = RawDataElement(_CHARSET, "CS", 0, b"", 0, False, True)
_NOT_EXPLICIT_LE = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
)


def read_header(fp: BinaryIO, data: bytes, *, mtime: float | None = None) -> FileDataset | None:
    """The header pydicom would read from `fp` (a file or buffer positioned at 0 whose bytes are
    `data`), with `fp` left where pydicom would leave it (at the pixel data tag, or the end);
    None, with `fp` untouched, when pydicom must read it. `mtime`: the file's modification time
    if the caller has it (FileDataset records it; else read from the path, as pydicom does)."""
    try:
        ds, position = _read(fp, data, mtime)
    except Exception:  # Unusual, or anything pydicom may report in its own way: let it read
        return None
    fp.seek(position)
    return ds


def _read(fp: BinaryIO, data: bytes, mtime: float | None) -> tuple[FileDataset, int]:
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unusual
    if not pydicom_as_shipped():
        raise Unusual  # custom reading hooks: only pydicom knows what they do
    meta_elements, start = _meta_elements(data)
    # What pydicom builds: a Dataset of the elements, then a FileMetaDataset of that one (the
    # same elements, checked to be group 2: `_meta_elements` stops at the first that is not).
    file_meta = new_dataset(FileMetaDataset, meta_elements, default_encoding)
    file_meta.set_original_encoding(
        is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding
    )
    if meta_elements:
        # pydicom converts the first element (by tag) to test it, then reads the group length:
        # the first element whenever there is one (element 0 comes first), converted already.
        file_meta[min(meta_elements)]
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
    if not isinstance(elements.get(_CHARSET, _RAW), RawDataElement):
        raise Unusual  # (what reading the data set's own encoding raises, see `own_encoding`)
    # pydicom reads a Dataset of the elements (recording their own encoding: unused, as that
    # Dataset only hands its elements on) and builds the FileDataset of it.
    ds = _file_dataset(fp, elements, data[:128], file_meta, mtime)
    ds.set_original_encoding(False, True, ds._character_set)
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


def _file_dataset(
    fp: Any,
    elements: dict[Any, Any],
    preamble: bytes,
    file_meta: FileMetaDataset,
    mtime: float | None = None,
) -> FileDataset:
    """`FileDataset(fp, Dataset(elements), preamble, file_meta, False, True)`. For a file opened
    with `open(path, "rb")`, `mtime` is its modification time if the caller has it (from the
    open file: one system call where FileDataset makes two on the path)."""
    if not _FILE_FAST or type(fp) is not io.BufferedReader or not isinstance(fp.name, str):
        dataset = new_dataset(Dataset, elements, default_encoding)
        return FileDataset(fp, dataset, preamble, file_meta, False, True)
    ds = new_dataset(FileDataset, elements, default_encoding)
    state = ds.__dict__
    state.update(_FILE_ATTRIBUTES)
    if not config._use_future:
        state["_is_implicit_VR"] = False
        state["_is_little_endian"] = True
    state["preamble"] = preamble
    state["file_meta"] = file_meta
    state["filename"] = fp.name
    if mtime is None:
        name = fp.name
        mtime = os.stat(name).st_mtime if name and os.path.exists(name) else None
    state["timestamp"] = mtime
    return ds


_FILE_ATTRIBUTES = {
    "_read_implicit": False,
    "_read_little": True,
    "fileobj_type": open,
    "buffer": None,
}
"""What FileDataset's constructor sets for explicit VR little endian read from a file."""


def _knows_file_dataset() -> bool:
    """True when FileDataset's constructor sets Dataset's attributes and the ones set above,
    no others (else `_file_dataset` calls it)."""
    probe = FileDataset(io.BytesIO(), {}, b"", FileMetaDataset(), False, True)
    own = set(probe.__dict__) - set(Dataset().__dict__)
    known = {"preamble", "file_meta", "filename", "timestamp", *_FILE_ATTRIBUTES}
    return not own - known - {"_is_implicit_VR", "_is_little_endian"}


_FILE_FAST = _knows_file_dataset()
