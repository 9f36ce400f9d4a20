"""Read a DICOM file's header without its pixel data, and write a new header in front of the
original pixel data bytes, copied untouched.

The pixel data element (7FE0,0010 or its float variants) is never parsed into memory: its offset
and length are found from the element header (and the item headers of encapsulated data), and
its bytes are copied in chunks. Memory stays bounded whatever the file size. Elements after the
pixel data (rare: trailing padding, vendor groups above 7FE0) are read into the dataset so they
are de-identified like the rest, and written after the copied pixel data.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Protocol

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filereader import _read_file_meta_info, read_dataset
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from trialship.deid.elements import canonical_text, text_value, unsigned_short, value_of
from trialship.deid.raw_encode import LONG_VRS, sorted_keys, write_elements
from trialship.deid.raw_parse import tag_key
from trialship.intake.header_reader import read_header
from trialship.intake.structure import Read, Truncated, check_trailing, check_whole

CHUNK = 1 << 20
WHOLE = 8 << 20
"""Files up to this size are read in one call and hashed, parsed and copied from that buffer."""
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_ITEM = 0xFFFEE000
_SOP_CLASS_UID = tag_key(0x00080016)
_SOP_INSTANCE_UID = tag_key(0x00080018)
_TRANSFER_SYNTAX_UID = tag_key(0x00020010)
_SEQUENCE_END = 0xFFFEE0DD


_CAUSES: dict[type[Exception], str] = {
    InvalidDicomError: "no DICOM header",
    EOFError: "truncated",
    struct.error: "truncated",
    BytesLengthException: "a value's length does not fit its value representation",
    zlib.error: "the deflated data set is truncated or corrupt",
}
"""What pydicom's errors mean, as a rejection reason (anything else: malformed)."""
_READ_ERRORS: tuple[type[Exception], ...] = (*_CAUSES, ValueError, KeyError, TypeError)


def read_error_cause(exc: Exception) -> str:
    """What an error met while reading or converting a data set means, in words (never PHI:
    pydicom's messages quote values)."""
    for kind, text in _CAUSES.items():
        if isinstance(exc, kind):
            return text
    if isinstance(exc, _READ_ERRORS):
        return "malformed"
    return f"unexpected error ({type(exc).__name__})"


class UnreadableFile(Exception):
    """The input cannot be de-identified; the message is the rejection reason (never PHI)."""


@dataclass
class Instance:
    """A parsed input: the header dataset and where the raw pixel data bytes are."""

    dataset: FileDataset
    size: int
    pixel_start: int | None = None
    """Offset of the pixel data element's tag, or None when there is none (or it was read)."""
    pixel_end: int = 0
    """Offset just after the pixel data element (its last item delimiter if encapsulated)."""
    pixel_tag: int = 0
    value_start: int = 0
    pixel_vr: bytes = b"OB"
    pixel_length: int = 0
    data: bytes | None = None
    """The whole file when it is small (`WHOLE`): one read instead of seeks and chunks."""
    body: BinaryIO | None = None
    """A deflated input's data set, inflated into a scratch file (an Explicit VR Little Endian
    file of `size` bytes, which the offsets refer to); None when they refer to the input."""
    input_size: int = 0
    """The input's own size, when `body` holds the data set."""


def _encoding(ds: Dataset) -> tuple[bool, bool]:
    implicit, little = ds.original_encoding
    return bool(implicit), little is not False


def read_instance(fp: BinaryIO, size: int, *, mtime: float | None = None) -> Instance:
    """Parse `fp` (a seekable binary file of `size` bytes, modified at `mtime` if the caller
    knows) up to its pixel data.

    Raises UnreadableFile with the reason for anything that is not a usable DICOM instance.
    """
    if size == 0:
        raise UnreadableFile("empty file (0 bytes)")
    fp.seek(0)
    data = fp.read(size) if size <= WHOLE else None
    if data is not None and len(data) != size:
        raise UnreadableFile("truncated while copying")
    inflated = _inflated(fp, size, data[:_META_WALK] if data is not None else fp.read(_META_WALK))
    if inflated is not None:
        body, body_size = inflated
        instance = read_instance(body, body_size, mtime=mtime)  # (not deflated: once)
        instance.body, instance.input_size = body, size
        return instance
    fp.seek(0)
    instance = _parse(fp, size, data, mtime)
    instance.data = data
    return instance


def _parse(fp: BinaryIO, size: int, data: bytes | None, mtime: float | None) -> Instance:
    try:
        ds, fast = _read_header(fp, data, mtime)
    except UnreadableFile:
        raise
    except _READ_ERRORS as exc:
        raise UnreadableFile(f"not readable as DICOM: {read_error_cause(exc)}") from None
    if not fast:
        _check_whole(fp, size, data, ds)
    if _SOP_INSTANCE_UID not in ds._dict or _SOP_CLASS_UID not in ds._dict:
        raise UnreadableFile("not a DICOM instance (no SOP Class or SOP Instance UID)")
    _set_transfer_syntax(ds)
    start = fp.tell()
    instance = Instance(dataset=ds, size=size)
    if start >= size:
        return instance
    # The bytes are in hand when the file was read whole: no read (and seeks) of the file again.
    header = data[start : start + 12] if data is not None else fp.read(12)
    implicit, little = _encoding(ds)
    order = "<" if little else ">"
    if len(header) < 8:
        raise UnreadableFile("truncated at the pixel data")
    group, element = struct.unpack(order + "HH", header[:4])
    tag = group << 16 | element
    if tag not in PIXEL_TAGS:
        raise UnreadableFile("unexpected element where pixel data should start")
    vr = b"OB"
    if implicit or header[4:8] == b"\xff\xff\xff\xff":
        # Implicit VR, or (seen in the wild) an explicit file with an implicit pixel header.
        (length,) = struct.unpack(order + "L", header[4:8])
        value_start = start + 8
        vr = b"OB" if length == 0xFFFFFFFF or ds.get("BitsAllocated", 16) <= 8 else b"OW"
    else:
        if len(header) < 12 or header[4:6] not in LONG_VRS:
            raise UnreadableFile("malformed pixel data element header")
        vr = header[4:6]
        (length,) = struct.unpack(order + "L", header[8:12])
        value_start = start + 12
    if length == 0xFFFFFFFF:
        end = _skip_items(fp, value_start, size, order)
    else:
        end = value_start + length
    if end > size:
        raise UnreadableFile("truncated: pixel data runs past the end of the file")
    if tag == _PIXEL_DATA and length != 0xFFFFFFFF:
        _check_native_length(ds, length)
    instance.value_start, instance.pixel_vr, instance.pixel_length = value_start, vr, length
    instance.pixel_start, instance.pixel_end, instance.pixel_tag = start, end, tag
    if end < size:
        _read_trailing(fp, ds, end, size, tag)
    return instance


MAX_INFLATION = 200
"""A deflated data set may inflate to this many times its file's size (and to 1 MiB whatever
its size), as a zip entry may (`sources.ZipLimits`): a 3 MB file of zeros inflating to 3 GiB
is a bomb, not an image."""


def _inflated(fp: BinaryIO, size: int, head: bytes) -> tuple[BinaryIO, int] | None:
    """A Deflated Explicit VR Little Endian file's data set inflated into a scratch file, as
    an Explicit VR Little Endian file (whose offsets the Instance then refers to); None for
    any other file (`head`: its first `_META_WALK` bytes, or all it has). Inflated a chunk at
    a time: memory stays bounded (pydicom inflates the whole data set in memory, four times
    over)."""
    if head[128:132] != b"DICM" or _meta_syntax(head) not in (None, _DEFLATED):
        return None
    fp.seek(132)
    try:
        meta = _read_file_meta_info(fp)
    except Exception:  # not ours to judge here: the header reader says what is wrong
        meta = None
    if meta is None or _syntax(meta) != DeflatedExplicitVRLittleEndian:
        fp.seek(0)
        return None
    body = tempfile.TemporaryFile()  # noqa: SIM115 (the Instance owns it; unlinked at once)
    try:
        body.write(b"\0" * 128 + b"DICM")
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        write_file_meta_info(DicomFileLike(body), meta, enforce_standard=True)
        _inflate(fp, body, max(MAX_INFLATION * size, 1 << 20))
        inflated_size = body.tell()
        body.seek(0)
        return body, inflated_size
    except BaseException:
        body.close()
        raise


_META_WALK = 132 + 4096
_DEFLATED = DeflatedExplicitVRLittleEndian.encode("ascii")


def _meta_syntax(head: bytes) -> bytes | None:
    """The TransferSyntaxUID in the file meta at the start of `head` (a file's first bytes),
    found by a walk of its element headers (Explicit VR Little Endian, PS3.10 7.1); None when
    the walk cannot tell, and pydicom reads the meta instead. Reading the meta of every file
    with pydicom only to learn it is not deflated cost a tenth of a millisecond a file."""
    position = 132
    while position + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, position)
        if group != 2:
            return b""  # (no TransferSyntaxUID in the meta)
        vr = head[position + 4 : position + 6]
        if vr in LONG_VRS:
            if position + 12 > len(head):
                return None
            (length,) = struct.unpack_from("<L", head, position + 8)
            position += 12
        else:
            (length,) = struct.unpack_from("<H", head, position + 6)
            position += 8
        if element == 0x0010:
            value = head[position : position + length]
            return value.rstrip(b"\0 ") if len(value) == length else None
        position += length
    return None


def _inflate(fp: BinaryIO, body: IO[bytes], limit: int) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # (raw deflate: PS3.5 A.5)
    pending, total = b"", 0
    while not inflater.eof:
        if not pending:
            pending = fp.read(CHUNK)
            if not pending:
                raise UnreadableFile(_CAUSES[zlib.error])
        try:
            out = inflater.decompress(pending, CHUNK)
        except zlib.error:
            raise UnreadableFile(_CAUSES[zlib.error]) from None
        pending = inflater.unconsumed_tail
        total += len(out)
        if total > limit:
            raise UnreadableFile(
                f"deflate bomb guard: the data set inflates to more than {MAX_INFLATION} "
                "times the file's size"
            )
        body.write(out)


_PIXEL_DATA = 0x7FE00010


def _check_native_length(ds: Dataset, length: int) -> None:
    """Native (not encapsulated) pixel data holds every frame the header describes (PS3.5
    8.1.1): fewer bytes is a file cut short or a header that lies, and either leaves a broken
    image behind that nobody can review."""
    try:
        rows, columns = _number(ds, "Rows", 0), _number(ds, "Columns", 0)
        samples, bits = _number(ds, "SamplesPerPixel", 1), _number(ds, "BitsAllocated", 0)
        frames = _number(ds, "NumberOfFrames", 1)
    except (TypeError, ValueError):
        raise UnreadableFile("malformed: the image's size attributes are not numbers") from None
    if not rows or not columns or not bits:
        raise UnreadableFile("malformed: pixel data without Rows, Columns and Bits Allocated")
    if text_value(ds, "PhotometricInterpretation") == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
    needed = (rows * columns * samples * frames * bits + 7) // 8
    if length < needed:
        raise UnreadableFile(
            f"truncated: the pixel data holds {length} bytes; {frames} frame(s) of "
            f"{rows} x {columns} x {samples} at {bits} bits need {needed}"
        )


def _number(ds: Dataset, keyword: str, default: int) -> int:
    """`int(ds.get(keyword) or default)`, without converting a raw US or IS element (which
    costs, here and when the header is written again)."""
    number = unsigned_short(ds, keyword)
    if number is not None:
        return number
    text = text_value(ds, keyword)
    return int(text) if text.isdigit() else int(ds.get(keyword) or default)


def _read_header(fp: BinaryIO, data: bytes | None, mtime: float | None) -> tuple[FileDataset, bool]:
    """The header, and whether the fast reader read it (it refuses a file cut short itself)."""
    if data is not None:
        # The common case (Explicit VR Little Endian) from the bytes in hand; pydicom otherwise.
        fast = read_header(fp, data, mtime=mtime)
        if fast is not None:
            return fast, True
    try:
        return pydicom.dcmread(fp, stop_before_pixels=True), False
    except InvalidDicomError:
        pass
    # No preamble: accept only what starts like a data set (little or big endian), or like
    # file meta information without its preamble.
    fp.seek(0)
    first = fp.read(8)
    groups = struct.unpack("<H", first[:2]) + struct.unpack(">H", first[:2]) if first[:2] else ()
    if len(first) < 8 or not _FIRST_GROUPS.intersection(groups):
        raise UnreadableFile("not DICOM (no DICM prefix and no recognisable data set)")
    fp.seek(0)
    return pydicom.dcmread(fp, stop_before_pixels=True, force=True), False


_FIRST_GROUPS = frozenset({0x0002, 0x0008, 0x0010, 0x0018, 0x0020})


def _check_whole(fp: BinaryIO, size: int, data: bytes | None, ds: FileDataset) -> None:
    """Refuse a file pydicom read although it was cut short (see trialship.intake.structure)."""
    stop = fp.tell()
    implicit, little = _encoding(ds)
    try:
        check_whole(_reader(fp, data), size, stop, implicit=implicit, little=little)
    except Truncated as exc:
        raise UnreadableFile(str(exc)) from None
    fp.seek(stop)


def _reader(fp: BinaryIO, data: bytes | None) -> Read:
    """`read(offset, count)` for the header walks: from `data` when the file is in hand."""

    def read(offset: int, count: int) -> bytes:
        if data is not None:
            return data[offset : offset + count]
        fp.seek(offset)
        return fp.read(count)

    return read


def _set_transfer_syntax(ds: FileDataset) -> None:
    """Make the file meta transfer syntax say how the data set is really encoded."""
    if ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    implicit, little = _encoding(ds)
    syntax = _syntax(ds.file_meta)
    if implicit:
        wanted = ImplicitVRLittleEndian
    elif not little:
        wanted = ExplicitVRBigEndian
    elif syntax in ("", ImplicitVRLittleEndian, ExplicitVRBigEndian):
        wanted = ExplicitVRLittleEndian
    else:
        return  # explicit little endian: the declared (possibly compressed) syntax stands
    if syntax != wanted:
        ds.file_meta.TransferSyntaxUID = wanted


def _syntax(meta: Dataset) -> str:
    """`str(meta.get("TransferSyntaxUID", ""))`."""
    if _TRANSFER_SYNTAX_UID not in meta._dict:
        return ""
    return str(value_of(meta, _TRANSFER_SYNTAX_UID))


def _skip_items(fp: BinaryIO, position: int, size: int, order: str) -> int:
    """The offset after an encapsulated pixel data value's sequence delimiter."""
    while True:
        fp.seek(position)
        header = fp.read(8)
        if len(header) < 8:
            raise UnreadableFile("truncated: encapsulated pixel data has no end")
        group, element, length = struct.unpack(order + "HHL", header)
        tag = group << 16 | element
        position += 8
        if tag == _SEQUENCE_END:
            return position
        if tag != _ITEM or length == 0xFFFFFFFF:
            raise UnreadableFile("malformed encapsulated pixel data")
        position += length
        if position > size:
            raise UnreadableFile("truncated: encapsulated pixel data runs past the end")


def _read_trailing(fp: BinaryIO, ds: FileDataset, start: int, size: int, after: int) -> None:
    implicit, little = _encoding(ds)
    try:
        check_trailing(_reader(fp, None), size, start, after, implicit=implicit, little=little)
    except Truncated as exc:
        raise UnreadableFile(f"{exc} (after the pixel data)") from None
    fp.seek(start)
    try:
        trailing = read_dataset(fp, implicit, little, bytelength=size - start)
    except (EOFError, struct.error, ValueError, KeyError, TypeError):
        raise UnreadableFile("malformed elements after the pixel data") from None
    for tag in trailing.keys():  # noqa: SIM118 (iterating a Dataset converts elements)
        ds[tag] = trailing.get_item(tag)


# -- writing ------------------------------------------------------------------------------------


def encode_header(ds: FileDataset, below: int | None) -> bytes:
    """Preamble, file meta and the data set's elements with tags below `below` (all if None).

    Raw (unchanged) elements are written from their original bytes; pydicom writes the rest.
    """
    out = DicomBytesIO()
    out.write(bytes(ds.preamble or b"\0" * 128))
    out.write(b"DICM")
    out.write(encode_file_meta(ds.file_meta))
    implicit, little = _encoding(ds)
    out.is_implicit_VR, out.is_little_endian = implicit, little
    # Sorted as plain ints: comparing pydicom's BaseTag keys runs Python code per comparison.
    tags = sorted_keys(ds) if below is None else [t for t in sorted_keys(ds) if int(t) < below]
    if ds.original_character_set != ds._character_set:
        # A changed character set re-encodes text: pydicom converts and writes everything.
        write_dataset(out, _subset(ds, tags))
        return out.getvalue()
    write_elements(out, ds, tags, implicit, "<" if little else ">")
    return out.getvalue()


def encode_trailing(ds: FileDataset, above: int) -> bytes:
    tags = [tag for tag in sorted_keys(ds) if int(tag) > above]
    if not tags:
        return b""
    out = DicomBytesIO()
    implicit, little = _encoding(ds)
    out.is_implicit_VR, out.is_little_endian = implicit, little
    write_dataset(out, _subset(ds, tags))
    return out.getvalue()


def _subset(ds: FileDataset, tags: list[Any]) -> Dataset:
    part = Dataset()
    for tag in tags:
        part[tag] = ds.get_item(tag)
    implicit, little = _encoding(ds)
    part.set_original_encoding(implicit, little, ds.original_character_set)
    charset = ds.get("SpecificCharacterSet")
    if charset is not None and "SpecificCharacterSet" not in part:
        part.SpecificCharacterSet = charset
    return part


_META_ORDER = tuple(
    (tag_key(tag), vr)
    for tag, vr in (
        (0x00020001, "OB"),
        (0x00020002, "UI"),
        (0x00020003, "UI"),
        (0x00020010, "UI"),
        (0x00020012, "UI"),
        (0x00020013, "SH"),
        (0x00020016, "AE"),
    )
)
"""The file meta elements written in this order, by the keys datasets share (see `tag_key`)."""
_META_KNOWN = frozenset({tag_key(0x00020000), *(tag for tag, _ in _META_ORDER)})
_VERSION = _META_ORDER[0][0]


def encode_file_meta(meta: FileMetaDataset) -> bytes:
    """Group 2 (always explicit VR little endian) with its group length."""
    elems: Any = meta._dict  # looked up directly: `tag in meta` converts the tag each time
    if _VERSION not in elems:
        # What `meta.FileMetaInformationVersion = b"\0\1"` adds (without its keyword lookups).
        elems[_VERSION] = DataElement(_VERSION, "OB", b"\0\1")
    body = bytearray()
    for tag, vr in _META_ORDER:
        elem = elems.get(tag)
        if elem is None:
            continue
        if canonical_text(elem, vr) is not None:
            data = elem.value  # what converting and writing the value gives
            body += struct.pack("<HH2sH", 2, tag & 0xFFFF, vr.encode(), len(data)) + data
            continue
        value = meta[tag].value
        if vr == "OB":
            data = bytes(value)
            body += struct.pack("<HH2sHL", 2, tag & 0xFFFF, b"OB", 0, len(data)) + data
            continue
        data = str(value).encode("ascii")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
        body += struct.pack("<HH2sH", 2, tag & 0xFFFF, vr.encode(), len(data)) + data
    extra = [tag for tag in elems if tag not in _META_KNOWN]
    if extra:
        rest = DicomBytesIO()
        rest.is_implicit_VR, rest.is_little_endian = False, True
        for tag in sorted(extra):
            write_data_element(rest, meta[tag])
        body += rest.getvalue()
    return struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(body)) + bytes(body)


def hash_range(fp: BinaryIO, start: int, end: int, *hashers: Any) -> None:
    for chunk in read_chunks(fp, start, end):
        for hasher in hashers:
            hasher.update(chunk)


def read_chunks(fp: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    fp.seek(start)
    left = end - start
    while left > 0:
        chunk = fp.read(min(CHUNK, left))
        if not chunk:
            raise UnreadableFile("truncated while copying")
        left -= len(chunk)
        yield chunk


class Target(Protocol):
    """Where `write_instance` writes: a binary file, or an `output_file.OutputFile`."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


def write_instance(
    instance: Instance, source: BinaryIO, target: Target, *, input_sha256: str | None = None
) -> tuple[str, str]:
    """Write the de-identified `instance` to `target`; returns (input, output) SHA-256 hex.

    The header is encoded first (so an encoding error leaves `target` empty), then the pixel
    data bytes are copied from `source` in chunks, then any trailing elements. `input_sha256`:
    the input's hash when the caller took it as it stored the file (it is not taken again).
    """
    ds = instance.dataset
    hash_out = hashlib.sha256()
    if instance.body is not None:
        # The input is the deflated file; its data set is read from the inflated one.
        if not input_sha256:
            whole = hashlib.sha256()
            hash_range(source, 0, instance.input_size, whole)
            input_sha256 = whole.hexdigest()
        source = instance.body
    hash_in = _Known(input_sha256) if input_sha256 else hashlib.sha256()
    read_to_hash = not input_sha256  # (else no byte is read only to be hashed)
    if instance.pixel_start is None:
        data = _encode_whole(ds)
        if instance.data is not None:
            hash_in.update(instance.data)
        elif read_to_hash:
            hash_range(source, 0, instance.size, hash_in)
        hash_out.update(data)
        target.write(data)
        return hash_in.hexdigest(), hash_out.hexdigest()
    header = encode_header(ds, instance.pixel_tag)
    trailing = encode_trailing(ds, instance.pixel_tag)
    header += _pixel_header(instance, *_encoding(ds))
    if instance.data is not None:
        # hashlib releases the GIL on large buffers: one call per range, no copies.
        pixels = memoryview(instance.data)[instance.value_start : instance.pixel_end]
        hash_in.update(instance.data)
        hash_out.update(header)
        hash_out.update(pixels)
        hash_out.update(trailing)
        target.write(header)
        target.write(pixels)
        target.write(trailing)
        pixels.release()
        return hash_in.hexdigest(), hash_out.hexdigest()
    hash_out.update(header)
    target.write(header)
    if read_to_hash:
        hash_range(source, 0, instance.value_start, hash_in)
    for chunk in read_chunks(source, instance.value_start, instance.pixel_end):
        hash_in.update(chunk)
        hash_out.update(chunk)
        target.write(chunk)
    if read_to_hash:
        hash_range(source, instance.pixel_end, instance.size, hash_in)
    hash_out.update(trailing)
    target.write(trailing)
    return hash_in.hexdigest(), hash_out.hexdigest()


class _Known:
    """A hasher whose digest is known already: what it is fed is not hashed."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def update(self, data: Any) -> None:
        pass

    def hexdigest(self) -> str:
        return self.digest


def _pixel_header(instance: Instance, implicit: bool, little: bool) -> bytes:
    """The pixel data element's tag and length, in the output's encoding."""
    order = "<" if little else ">"
    tag = instance.pixel_tag
    if implicit:
        return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, instance.pixel_length)
    return struct.pack(
        order + "HH2sHL", tag >> 16, tag & 0xFFFF, instance.pixel_vr, 0, instance.pixel_length
    )


def _encode_whole(ds: FileDataset) -> bytes:
    if ds.get("SOPInstanceUID") is None:
        raise UnreadableFile("no SOP Instance UID")
    return encode_header(ds, None)
