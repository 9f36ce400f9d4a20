"""Write a DICOMDIR (Basic Directory IOD, PS3.3 F.3) in one linear pass over the entries.

pydicom's FileSet.add checks every new instance against all earlier ones (O(n^2), standards.md
section 4), so the records are built here: each record is encoded once with zero offsets, its
length gives every record's position, then the four kinds of offsets are patched into the
encoded bytes. Offsets count from the first byte of the file (PS3.10 7.1: the preamble is part
of the File Meta Information).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement

from trialship.media.encoding import (
    UTF8_CHARSET,
    Value,
    directory_header,
    element,
    encode_pydicom_element,
    file_meta_bytes,
    needs_utf8,
)
from trialship.media.entries import DirEntry, entry_from_file, number_entries
from trialship.media.errors import DicomdirError
from trialship.media.fileid import validate_volume_id
from trialship.media.records import EXTRA_KEYS

__all__ = ["DirEntry", "build_dicomdir", "entry_from_file", "number_entries", "write_dicomdir"]

_ITEM = b"\xfe\xff\x00\xe0"
# Byte positions of the offset values inside an encoded record (before the item header):
# (0004,1400) UL starts the record, value after tag+VR+length; (0004,1410) US follows (10
# bytes); (0004,1420) UL after that. _encode_record checks the tags are where we expect them.
_NEXT_AT = 8
_LOWER_AT = 8 + 4 + 10 + 8
_NEXT_TAG = b"\x04\x00\x00\x14UL\x04\x00"
_LOWER_TAG = b"\x04\x00\x20\x14UL\x04\x00"


@dataclass(slots=True)
class _Node:
    """A record under construction: its bytes, and the records of the entity below it."""

    body: bytearray
    children: list[_Node] = field(default_factory=list)
    offset: int = 0


def build_dicomdir(
    entries: Iterable[DirEntry],
    *,
    fileset_id: str,
    fileset_uid: str,
    implementation_class_uid: str,
    implementation_version_name: str = "",
) -> bytes:
    """Encode a DICOMDIR for `entries` (each with its File ID) and return the file's bytes
    (see write_dicomdir)."""
    out = io.BytesIO()
    write_dicomdir(
        out.write,
        entries,
        fileset_id=fileset_id,
        fileset_uid=fileset_uid,
        implementation_class_uid=implementation_class_uid,
        implementation_version_name=implementation_version_name,
    )
    return out.getvalue()


def write_dicomdir(
    write: Callable[[bytes], object],
    entries: Iterable[DirEntry],
    *,
    fileset_id: str,
    fileset_uid: str,
    implementation_class_uid: str,
    implementation_version_name: str = "",
) -> int:
    """Encode a DICOMDIR for `entries` (each with its File ID), handing its bytes to `write`
    record by record (a disc of 40,000 files has a DICOMDIR of 15 MB, and its records take
    as much again while they are linked); returns the number of bytes.

    Patients, studies and series appear in the order of their first entry; instances in the
    order given. Raises DicomdirError on a missing key, a duplicate SOP Instance UID or File
    ID, a study filed under two patients, or no entries at all (PS3.11 D.3.3).
    """
    fileset_id = validate_volume_id(fileset_id)
    roots = _tree(entries)
    head = file_meta_bytes(fileset_uid, implementation_class_uid, implementation_version_name)
    header = directory_header(fileset_id)
    # The records start after the header elements and the sequence's own tag/VR/length.
    position = len(head) + len(header) + 12
    ordered: list[_Node] = []
    position = _place(roots, position, ordered)
    for nodes in _entities(roots):
        for node, following in zip(nodes, [*nodes[1:], None], strict=True):
            struct.pack_into("<I", node.body, _NEXT_AT, following.offset if following else 0)
            lower = node.children[0].offset if node.children else 0
            struct.pack_into("<I", node.body, _LOWER_AT, lower)
    # The header ends with first-offset UL (12 bytes), last-offset UL (12), consistency US (10).
    struct.pack_into("<I", header, len(header) - 26, roots[0].offset)
    struct.pack_into("<I", header, len(header) - 14, roots[-1].offset)
    sequence_length = position - len(head) - len(header) - 12
    write(head + header + b"\x04\x00\x20\x12SQ\x00\x00" + struct.pack("<I", sequence_length))
    del roots
    ordered.reverse()  # taken from the end: each record is let go once it is written
    while ordered:
        body = ordered.pop().body
        write(_ITEM + struct.pack("<I", len(body)) + body)
    return position


def _place(nodes: Sequence[_Node], position: int, ordered: list[_Node]) -> int:
    # Depth-first, as readers expect: a patient, its first study, that study's series, ...
    # Iterative so deep trees and long lists never meet the recursion limit.
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        node.offset = position
        position += 8 + len(node.body)
        ordered.append(node)
        stack.extend(reversed(node.children))
    return position


def _entities(roots: list[_Node]) -> Iterable[list[_Node]]:
    stack = [roots]
    while stack:
        nodes = stack.pop()
        yield nodes
        stack.extend(node.children for node in nodes if node.children)


def _tree(entries: Iterable[DirEntry]) -> list[_Node]:
    patients: dict[str, _Node] = {}
    studies: dict[str, tuple[str, _Node]] = {}
    series: dict[tuple[str, str], _Node] = {}
    seen_sop: set[str] = set()
    seen_file: set[str] = set()
    for entry in entries:
        _check_instance(entry, seen_sop, seen_file)
        patient = patients.get(entry.patient_id)
        if patient is None:
            patient = patients[entry.patient_id] = _Node(_patient_record(entry))
        owner, study = studies.get(entry.study_instance_uid, ("", None))
        if study is None:
            study = _Node(_study_record(entry))
            studies[entry.study_instance_uid] = (entry.patient_id, study)
            patient.children.append(study)
        elif owner != entry.patient_id:
            raise DicomdirError(
                f"study {entry.study_instance_uid} is filed under patients {owner!r} and "
                f"{entry.patient_id!r}"
            )
        key = (entry.study_instance_uid, entry.series_instance_uid)
        if key not in series:
            series[key] = _Node(_series_record(entry))
            study.children.append(series[key])
        series[key].children.append(_Node(_instance_record(entry)))
    if not patients:
        raise DicomdirError("a DICOMDIR needs at least one instance (PS3.11 D.3.3)")
    return list(patients.values())


def _check_instance(entry: DirEntry, seen_sop: set[str], seen_file: set[str]) -> None:
    if entry.file_id is None:
        raise DicomdirError(f"instance {entry.sop_instance_uid} has no File ID")
    if entry.sop_instance_uid in seen_sop:
        raise DicomdirError(f"SOP Instance UID {entry.sop_instance_uid} is listed twice")
    if entry.file_id.posix in seen_file:
        raise DicomdirError(f"File ID {entry.file_id.posix} is used twice")
    seen_sop.add(entry.sop_instance_uid)
    seen_file.add(entry.file_id.posix)


def _required(entry: DirEntry, record: str, **values: object) -> None:
    # Type 1 keys: the de-identification engine writes dummies upstream (PS3.11 D.3.3.1), so an
    # empty one here is a bug in the caller's data, reported with the file it came from.
    for keyword, value in values.items():
        if value is None or value == "":
            where = entry.file_id.posix if entry.file_id else entry.sop_instance_uid
            raise DicomdirError(
                f"{keyword} is empty in {where}; the {record} record needs it (PS3.3 F.5)"
            )


Fields = list[tuple[int, str, Value]]


def _record(record_type: str, fields: Fields, extra: Sequence[DataElement] = ()) -> bytearray:
    utf8 = needs_utf8([value for _, _, value in fields])
    parts = [
        (0x00041400, element(0x00041400, "UL", 0)),
        (0x00041410, element(0x00041410, "US", 0xFFFF)),  # RecordInUseFlag: in use
        (0x00041420, element(0x00041420, "UL", 0)),
        (0x00041430, element(0x00041430, "CS", record_type)),
    ]
    if utf8:
        parts.append((0x00080005, element(0x00080005, "CS", UTF8_CHARSET)))
    parts += [(tag, element(tag, vr, value, utf8=utf8)) for tag, vr, value in fields]
    parts += [(int(e.tag), encode_pydicom_element(e, utf8=utf8)) for e in extra]
    parts.sort(key=lambda part: part[0])
    body = bytearray(b"".join(data for _, data in parts))
    if body[:8] != _NEXT_TAG or body[_LOWER_AT - 8 : _LOWER_AT] != _LOWER_TAG:
        raise AssertionError("directory record layout is not the expected one")
    return body


def _patient_record(entry: DirEntry) -> bytearray:
    _required(entry, "PATIENT", PatientID=entry.patient_id)
    return _record(
        "PATIENT",
        [(0x00100010, "PN", entry.patient_name), (0x00100020, "LO", entry.patient_id)],
    )


def _study_record(entry: DirEntry) -> bytearray:
    _required(
        entry,
        "STUDY",
        StudyInstanceUID=entry.study_instance_uid,
        StudyDate=entry.study_date,
        StudyTime=entry.study_time,
        StudyID=entry.study_id,
    )
    return _record(
        "STUDY",
        [
            (0x00080020, "DA", entry.study_date),
            (0x00080030, "TM", entry.study_time),
            (0x00080050, "SH", entry.accession_number),
            (0x00081030, "LO", entry.study_description),
            (0x0020000D, "UI", entry.study_instance_uid),
            (0x00200010, "SH", entry.study_id),
        ],
    )


def _series_record(entry: DirEntry) -> bytearray:
    _required(
        entry,
        "SERIES",
        Modality=entry.modality,
        SeriesInstanceUID=entry.series_instance_uid,
        SeriesNumber=entry.series_number,
    )
    return _record(
        "SERIES",
        [
            (0x00080060, "CS", entry.modality),
            (0x0020000E, "UI", entry.series_instance_uid),
            (0x00200011, "IS", entry.series_number),
        ],
    )


def _instance_record(entry: DirEntry) -> bytearray:
    record_type = entry.record_type
    assert entry.file_id is not None  # checked by _check_instance
    _required(
        entry,
        record_type,
        InstanceNumber=entry.instance_number,
        SOPClassUID=entry.sop_class_uid,
        SOPInstanceUID=entry.sop_instance_uid,
        TransferSyntaxUID=entry.transfer_syntax_uid,
    )
    fields: Fields = [
        (0x00041500, "CS", entry.file_id.components),
        (0x00041510, "UI", entry.sop_class_uid),
        (0x00041511, "UI", entry.sop_instance_uid),
        (0x00041512, "UI", entry.transfer_syntax_uid),
        (0x00200013, "IS", entry.instance_number),
    ]
    present = {elem.keyword: elem for elem in entry.extra}
    extra: list[DataElement] = []
    for keyword, key_type in EXTRA_KEYS[record_type]:
        elem = present.get(keyword)
        if key_type == 1:
            _required(entry, record_type, **{keyword: None if elem is None else elem.value})
        if elem is not None:
            extra.append(elem)
        elif key_type == 2:
            extra.append(DataElement(keyword, dictionary_VR(keyword), None))  # present, empty
    return _record(record_type, fields, extra)
