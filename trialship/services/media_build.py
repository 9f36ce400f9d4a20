"""Standalone disc build: folders of de-identified DICOM files in, ISO images + labels out.

No database: everything the discs need (trial, site, subject, time point) is read from the
Clinical Trial attributes of the headers (group 0012). The steps are the pure parts in order:
read headers, refuse identified files, rewrite implicit/deflated files as Explicit VR Little
Endian, group into exams, `plan_discs`, then per disc `build_disc` and `render_label`.
`discs.json` is written last, so a folder without it holds no finished set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.errors import TrialshipError, ValidationError
from trialship.labels import LabelContent, LabelTemplate, load_template, render_label
from trialship.media.build import EXPLICIT_VR_LE, DiscFile, build_disc
from trialship.media.capacity import PREFERENCE, ExamSize, Medium
from trialship.media.convert import CONVERTIBLE, to_explicit_vr_little_endian
from trialship.media.entries import (
    DirEntry,
    NotDicomError,
    entry_from_file,
    number_entries,
    read_entry,
)
from trialship.media.errors import DicomdirError, MediaBaseError
from trialship.media.iso import iso_path_of
from trialship.media.manifest import (
    MANIFEST_NAME,
    FileStamp,
    ManifestRow,
    hash_file,
    parse_manifest,
)
from trialship.media.planning import DiscPlan, PlannedDisc, plan_discs
from trialship.media.type1 import Type1Instance, WrittenZip, plan_tree, write_tree, write_zips

INDEX_NAME = "discs.json"
TYPE1_FOLDER = "TYPE1"
ZIP_FOLDER = "ZIP"
INDEX_FORMAT = 1
DEFAULT_PREFIX = "TRIALSHIP"
_DISC_FILE = re.compile(r"DISC\d{3,}(\.iso|-label\.pdf)")
# Read with each file's DirEntry (in the same pass over its header).
_TRIAL_TAGS = (
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName",
    "ClinicalTrialSiteID",
    "ClinicalTrialSubjectID",
    "ClinicalTrialTimePointID",
    "SeriesDescription",
)

Progress = Callable[[str, int, int], None]
"""Called with what is being done ("reading headers", "DISC001.iso"), done and total."""


class IdentifiedFilesError(ValidationError):
    """Files without PatientIdentityRemoved YES; `paths` lists every one of them."""

    def __init__(self, paths: Sequence[str]) -> None:
        listing = "\n".join(f"  {p}" for p in paths)
        super().__init__(
            f"{len(paths)} file(s) are not marked de-identified (PatientIdentityRemoved is not "
            f"YES); nothing was built. De-identify them first, or pass --allow-identified:\n"
            f"{listing}"
        )
        self.paths = tuple(paths)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input file as the disc needs it. `path` is the file to put on the disc (a converted
    copy when the original was implicit VR or deflated); `original` where it came from. Paths
    are strings: a disc's worth of Path objects would take 400 bytes a file more."""

    path: str
    original: str
    entry: DirEntry
    subject: str
    timepoint: str
    site: str
    protocol_id: str
    protocol_name: str
    deid_method: str
    series_description: str
    size: int
    identity_removed: bool = True
    sha256: str | None = None
    """What `path` hashes to, when known (the registry's record): the disc's read-back check
    compares the image with it. Otherwise the file is hashed as it is copied onto the disc."""
    stamp: FileStamp | None = None
    """`path` as the file system saw it before its header was read (FileStamp)."""


@dataclass(frozen=True)
class Exam:
    """One study: the files of one StudyInstanceUID and what a label says of it."""

    key: str
    study_uid: str
    subject: str
    timepoint: str
    date: str
    modalities: tuple[str, ...]
    description: str
    site: str
    files: tuple[SourceFile, ...]

    @property
    def size(self) -> ExamSize:
        series = {f.entry.series_instance_uid for f in self.files}
        return ExamSize(
            exam_key=self.key,
            bytes_per_file=tuple(f.size for f in self.files),
            subject=self.subject,
            timepoint=self.timepoint,
            series_count=len(series),
        )


@dataclass(frozen=True)
class BuiltDiscRecord:
    number: int
    iso: Path
    label: Path
    disc_id: str
    medium: Medium
    image_bytes: int
    sha256: str
    manifest_sha256: str
    exams: tuple[Exam, ...]
    hashes: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MediaBuildResult:
    out_dir: Path
    discs: tuple[BuiltDiscRecord, ...]
    medium: Medium
    index: Path
    skipped: tuple[str, ...]
    converted: int
    type1_tree: Path | None = None
    zips: tuple[WrittenZip, ...] = ()

    @property
    def load_hint(self) -> str:
        n = len(self.discs)
        return f"Load {n} blank {self.medium.label} disc{'s' if n != 1 else ''}"


def build_media(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    media: str = "auto",
    policy: str = "pack",
    label_template: str = "cd_face",
    allow_identified: bool = False,
    fileset_prefix: str | None = None,
    type1: bool = False,
    zips: bool = False,
    zip_limit: int | None = None,
    progress: Progress | None = None,
) -> MediaBuildResult:
    """Build DISC001.iso, DISC001-label.pdf, ... and discs.json in `out_dir`; with `type1`
    also the HIRO Type 1 tree in TYPE1/, with `zips` (or a `zip_limit` in bytes) the same tree
    as zips in ZIP/.

    Raises
    ------
    ValidationError
        No input files, identified files (unless `allow_identified`), files from more than one
        trial, an exam larger than the largest allowed medium, compressed files for a CD.
    TrialshipError
        Writing or checking an image failed (nothing is marked done: discs.json is not written).
    """
    report = progress or _quiet
    template = load_template(label_template)  # fail on a bad name before any heavy work
    paths = list(collect_paths(sources))
    if not paths:
        raise ValidationError("no files found in " + ", ".join(str(s) for s in sources))
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / INDEX_NAME
    index.unlink(missing_ok=True)  # the set in this folder is no longer known to be complete
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".trialship-convert-") as tmp:
        files, skipped = read_sources(
            paths, Path(tmp), allow_identified=allow_identified, progress=report
        )
        exams = group_exams(files)
        protocol = _single(files, "protocol_id", "ClinicalTrialProtocolID")
        prefix = disc_id_prefix(fileset_prefix or protocol or DEFAULT_PREFIX)
        plan = plan_exams(exams, media, policy)
        by_key = {exam.key: exam for exam in exams}
        discs: list[BuiltDiscRecord] = []
        for planned in plan.discs:
            disc_exams = tuple(by_key[e.exam_key] for e in planned.exams)
            discs.append(
                build_one_disc(
                    planned, len(plan.discs), disc_exams, out_dir, prefix, template, report
                )
            )
        extras = _write_type1(
            files,
            out_dir,
            prefix,
            type1=type1,
            zips=zips or bool(zip_limit),
            zip_limit=zip_limit,
            report=report,
        )
    result = MediaBuildResult(
        out_dir=out_dir,
        discs=tuple(discs),
        medium=plan.medium,
        index=index,
        skipped=tuple(skipped),
        converted=sum(1 for f in files if f.path != f.original),
        type1_tree=extras[0],
        zips=tuple(extras[1]),
    )
    _write_json(index, index_document(result, policy=policy, files=files))
    _remove_stale(out_dir, result)
    return result


def collect_paths(sources: Iterable[Path]) -> Iterator[str]:
    """Every file under `sources` (folders recursively, in name order, component by
    component as Paths sort), as path strings; DICOMDIRs are skipped: a disc gets its own."""
    for source in sources:
        if source.is_dir():
            found = [
                os.path.join(folder, name)
                for folder, _, names in os.walk(source)
                for name in names
                if name.upper() != "DICOMDIR"
            ]
            # Component by component: with the separators as NULs, which sort before every
            # other character, a plain string comparison does it (one string a file, not a
            # list of its components).
            found.sort(key=lambda path: path.replace(os.sep, "\0"))
            yield from (path for path in found if os.path.isfile(path))
        elif source.is_file():
            yield str(source)
        else:
            raise ValidationError(f"{source} does not exist")


def read_sources(
    paths: Sequence[str],
    workdir: Path,
    *,
    allow_identified: bool = False,
    progress: Progress | None = None,
    recorded: Mapping[str, str] | None = None,
) -> tuple[list[SourceFile], list[str]]:
    """Read every header (never pixel data), once per file. A file's SHA-256 is the one
    `recorded` for it, or none: `build_disc` then hashes it as it copies it, and its stamp
    (taken here, before its header is read) tells whether it changed in between. Files that
    are not DICOM are skipped and returned; implicit VR and deflated files are rewritten as
    Explicit VR Little Endian into `workdir`."""
    report = progress or _quiet
    refused: list[str] = []
    skipped: list[str] = []
    files: list[SourceFile] = []
    hashes = recorded or {}
    for done, path in enumerate(paths, 1):
        report("reading headers", done, len(paths))
        try:
            stamp = FileStamp.of_path(path)
            entry, values = read_entry(path, _TRIAL_TAGS)
        except NotDicomError:
            skipped.append(path)
            continue
        except MediaBaseError as exc:
            if isinstance(exc.__cause__, OSError):
                raise TrialshipError(str(exc)) from exc
            raise ValidationError(str(exc)) from exc
        source = _source_file(path, entry, values, hashes.get(path), stamp)
        if not source.identity_removed:
            refused.append(path)
        files.append(source)
    if refused and not allow_identified:
        raise IdentifiedFilesError(refused)
    if not files:
        raise ValidationError(f"none of the {len(paths)} input files is a DICOM file")
    for n, source in enumerate(files):  # only once no file is refused
        if source.entry.transfer_syntax_uid in CONVERTIBLE:
            files[n] = _converted(source, workdir / f"{n:08d}.dcm")
    _reject_duplicate_instances(files)
    return files, skipped


def _source_file(
    path: str, entry: DirEntry, values: dict[str, str], sha256: str | None, stamp: FileStamp
) -> SourceFile:
    _check_uids(path, entry)
    return SourceFile(
        path=path,
        original=path,
        entry=entry,
        subject=values["ClinicalTrialSubjectID"] or entry.patient_id,
        timepoint=values["ClinicalTrialTimePointID"],
        site=values["ClinicalTrialSiteID"],
        protocol_id=values["ClinicalTrialProtocolID"],
        protocol_name=values["ClinicalTrialProtocolName"],
        deid_method=values["DeidentificationMethod"],
        series_description=values["SeriesDescription"],
        size=stamp.size,
        identity_removed=values["PatientIdentityRemoved"].upper() == "YES",
        sha256=sha256,
        stamp=stamp,
    )


def _check_uids(path: str, entry: DirEntry) -> None:
    if not entry.study_instance_uid or not entry.sop_instance_uid:
        raise ValidationError(f"{path} has no StudyInstanceUID or SOPInstanceUID")


def _converted(source: SourceFile, target: Path) -> SourceFile:
    """`source` rewritten as Explicit VR Little Endian at `target`."""
    try:
        to_explicit_vr_little_endian(Path(source.path), target)
        entry = entry_from_file(target)
        stamp = FileStamp.of_path(target)
        sha256 = None if source.sha256 is None else hash_file(target)[1]
    except DicomdirError as exc:
        raise ValidationError(str(exc)) from exc
    except MediaBaseError as exc:
        raise TrialshipError(str(exc)) from exc
    _check_uids(source.path, entry)
    return dataclasses.replace(
        source, path=str(target), entry=entry, size=stamp.size, sha256=sha256, stamp=stamp
    )


def _reject_duplicate_instances(files: Sequence[SourceFile]) -> None:
    seen: dict[str, str] = {}
    for f in files:
        first = seen.setdefault(f.entry.sop_instance_uid, f.original)
        if first != f.original:
            raise ValidationError(
                f"{f.original} and {first} hold the same SOP Instance UID "
                f"{f.entry.sop_instance_uid}: give each instance once"
            )


def group_exams(files: Sequence[SourceFile]) -> list[Exam]:
    """One exam per StudyInstanceUID, in subject, time point, date order."""
    studies: dict[str, list[SourceFile]] = {}
    for f in files:
        studies.setdefault(f.entry.study_instance_uid, []).append(f)
    exams = []
    for study_uid, members in studies.items():
        first = members[0]
        date = _iso_date(first.entry.study_date)
        modalities = tuple(sorted({m.entry.modality for m in members if m.entry.modality}))
        label = " ".join(v for v in (first.subject, first.timepoint, date, *modalities) if v)
        exams.append(
            Exam(
                key=f"{label} (study {study_uid})",
                study_uid=study_uid,
                subject=first.subject,
                timepoint=first.timepoint,
                date=date,
                modalities=modalities,
                description=first.entry.study_description,
                site=first.site,
                files=tuple(members),
            )
        )
    return sorted(exams, key=lambda e: (e.subject, e.timepoint, e.date, e.key))


def disc_id_prefix(text: str) -> str:
    """The File-set ID prefix: A-Z, 0-9 and _ only, at most 11 characters (room for _D001)."""
    cleaned = re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")
    return cleaned[:11].rstrip("_") or DEFAULT_PREFIX


def disc_id(prefix: str, number: int) -> str:
    suffix = f"_D{number:03d}"
    return prefix[: 16 - len(suffix)] + suffix


def plan_exams(exams: Sequence[Exam], media: str, policy: str) -> DiscPlan:
    """Plan the discs of exams read from their headers (compressed files keep off CDs)."""
    compressed = [
        (str(f.original), f.entry.transfer_syntax_uid)
        for exam in exams
        for f in exam.files
        if f.entry.transfer_syntax_uid != EXPLICIT_VR_LE
    ]
    return plan_sizes([e.size for e in exams], media, policy, compressed=compressed)


def plan_sizes(
    sizes: Sequence[ExamSize],
    media: str,
    policy: str,
    *,
    compressed: Sequence[tuple[str, str]] = (),
) -> DiscPlan:
    """`plan_discs` with the CD rule of STD-GEN-CD: `compressed` lists (file, transfer syntax)
    of the files that are not Explicit VR Little Endian; any of them keeps the set off CDs."""
    allowed: Sequence[Medium] = PREFERENCE
    if compressed:
        name, syntax = compressed[0]
        if media != "auto" and Medium.from_key(media).is_cd:
            raise ValidationError(
                f"{len(compressed)} file(s) are compressed (e.g. {name}, transfer "
                f"syntax {syntax}); a CD holds uncompressed Explicit "
                "VR Little Endian only (STD-GEN-CD): use --media dvd"
            )
        allowed = [m for m in PREFERENCE if not m.is_cd]
    try:
        return plan_discs(sizes, media=media, policy=policy, allowed=allowed)
    except (MediaBaseError, ValueError) as exc:
        raise ValidationError(str(exc)) from exc


def build_one_disc(
    planned: PlannedDisc,
    count: int,
    exams: tuple[Exam, ...],
    out_dir: Path,
    prefix: str,
    template: LabelTemplate,
    report: Progress,
    *,
    timestamp: float | None = None,
) -> BuiltDiscRecord:
    """Build `out_dir`/DISCnnn.iso (DICOMDIR, README, manifest; read back and compared by
    `build_disc`) and DISCnnn-label.pdf for the exams of one planned disc."""
    name = f"DISC{planned.index:03d}"
    fileset_id = disc_id(prefix, planned.index)
    files = [f for exam in exams for f in exam.files]
    by_sop = {f.entry.sop_instance_uid: f for f in files}
    disc_files = []
    for entry in number_entries(f.entry for f in files):
        assert entry.file_id is not None
        source = by_sop[entry.sop_instance_uid]
        disc_files.append(  # (the entry read: the numbered copy goes when the loop ends)
            DiscFile(
                source.path, entry.file_id, source.entry, sha256=source.sha256, stamp=source.stamp
            )
        )
    readme = readme_text(exams, number=planned.index, count=count, medium=planned.medium)
    iso = out_dir / f"{name}.iso"
    try:
        built = build_disc(
            disc_files,
            iso,
            fileset_id=fileset_id,
            fileset_uid=_fileset_uid(fileset_id, by_sop),
            medium=planned.medium,
            readme_text=readme,
            progress=lambda done, total: report(iso.name, done, total),
            timestamp=timestamp,
        )
    except MediaBaseError as exc:
        raise TrialshipError(f"{iso.name}: {exc}") from exc
    label = out_dir / f"{name}-label.pdf"
    content = label_content(exams, number=planned.index, count=count, disc=fileset_id)
    content = dataclasses.replace(content, manifest_sha256=built.manifest_sha256)
    _write_bytes(label, render_label(template, [content]))
    return BuiltDiscRecord(
        number=planned.index,
        iso=iso,
        label=label,
        disc_id=fileset_id,
        medium=planned.medium,
        image_bytes=built.bytes,
        sha256=built.sha256,
        manifest_sha256=built.manifest_sha256,
        exams=exams,
        hashes={r.path: (r.size, r.sha256) for r in built.rows},
    )


def _write_type1(
    files: Sequence[SourceFile],
    out_dir: Path,
    stem: str,
    *,
    type1: bool,
    zips: bool,
    zip_limit: int | None,
    report: Progress,
) -> tuple[Path | None, list[WrittenZip]]:
    if not (type1 or zips):
        return None, []
    tree = plan_tree(_type1_instance(f) for f in files)
    root = out_dir / TYPE1_FOLDER
    written: list[WrittenZip] = []
    try:
        if type1:
            report(TYPE1_FOLDER, 0, 1)
            shutil.rmtree(root, ignore_errors=True)  # the tree of an earlier build
            write_tree(tree, root)
        if zips:
            report(ZIP_FOLDER, 0, 1)
            shutil.rmtree(out_dir / ZIP_FOLDER, ignore_errors=True)
            written = write_zips(tree, out_dir / ZIP_FOLDER, stem=stem, limit=zip_limit)
    except MediaBaseError as exc:
        raise TrialshipError(str(exc)) from exc
    return (root if type1 else None), written


def _type1_instance(f: SourceFile) -> Type1Instance:
    e = f.entry
    return Type1Instance(
        source=Path(f.path),
        size=f.size,
        subject=f.subject,
        study_date=e.study_date,
        study_uid=e.study_instance_uid,
        study_description=e.study_description,
        modality=e.modality,
        series_uid=e.series_instance_uid,
        series_number=e.series_number,
        series_description=f.series_description,
        instance_number=e.instance_number,
        sop_instance_uid=e.sop_instance_uid,
    )


def _fileset_uid(fileset_id: str, by_sop: dict[str, SourceFile]) -> str:
    # The same disc contents give the same UID, so a rebuild is recognisably the same disc.
    name = fileset_id + "\n" + "\n".join(sorted(by_sop))
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def read_manifest(iso: Path) -> tuple[str, list[ManifestRow]]:
    """The SHA-256 of the image's MANIFEST.CSV (what the label's QR code holds) and its rows."""
    image = pycdlib.PyCdlib()
    buffer = io.BytesIO()
    try:
        image.open(str(iso))
        try:
            image.get_file_from_iso_fp(buffer, iso_path=iso_path_of(MANIFEST_NAME))
        finally:
            image.close()
    except PyCdlibException as exc:
        raise TrialshipError(f"cannot read {MANIFEST_NAME} from {iso}: {exc}") from exc
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest(), parse_manifest(data)


def label_content(exams: Sequence[Exam], *, number: int, count: int, disc: str) -> LabelContent:
    files = [f for e in exams for f in e.files]
    return LabelContent(
        disc_number=number,
        disc_count=count,
        disc_id=disc,
        manifest_sha256="0" * 64,
        trial_name=_single(files, "protocol_name", "ClinicalTrialProtocolName"),
        protocol_number=_single(files, "protocol_id", "ClinicalTrialProtocolID"),
        site_number=_summary([e.site for e in exams], "sites"),
        subject_id=_summary([e.subject for e in exams], "subjects"),
        time_point=_summary([e.timepoint for e in exams], "time points"),
        exam_date=_summary([e.date for e in exams], "dates"),
        modality=_summary([m for e in exams for m in e.modalities], "modalities"),
        exam_description=exams[0].description if len(exams) == 1 else f"{len(exams)} exams",
        is_deidentified=all(f.identity_removed for f in files),
    )


def readme_text(exams: Sequence[Exam], *, number: int, count: int, medium: Medium) -> str:
    files = [f for e in exams for f in e.files]
    methods = sorted({f.deid_method for f in files if f.deid_method})
    lines = [
        "DE-IDENTIFIED CLINICAL TRIAL IMAGING",
        "",
        f"Trial:        {_single(files, 'protocol_name', 'ClinicalTrialProtocolName') or '-'}",
        f"Protocol:     {_single(files, 'protocol_id', 'ClinicalTrialProtocolID') or '-'}",
        f"Site:         {', '.join(_unique(e.site for e in exams)) or '-'}",
        f"Subjects:     {', '.join(_unique(e.subject for e in exams))}",
        f"Time points:  {', '.join(_unique(e.timepoint for e in exams)) or '-'}",
        f"Disc:         {number} of {count} ({medium.label})",
        f"Exams:        {len(exams)}, {len(files)} DICOM files",
        "",
        "Exams on this disc:",
        *(
            f"  {e.subject}  {e.timepoint or '-'}  {e.date or '-'}  "
            f"{'/'.join(e.modalities) or '-'}  {e.description}  ({len(e.files)} files)"
            for e in exams
        ),
        "",
        _deid_statement(files),
        f"De-identification method (0012,0063): {'; '.join(methods) or 'not stated'}",
        "",
        "How to open: load the disc in any DICOM viewer and open the DICOMDIR file in the root",
        "folder. The images are under DICOM/. MANIFEST.CSV lists every file with its size and",
        "SHA-256 checksum, so the contents can be checked after copying.",
    ]
    return "\n".join(lines) + "\n"


def _deid_statement(files: Sequence[SourceFile]) -> str:
    identified = sum(1 for f in files if not f.identity_removed)
    if identified:
        return (
            f"WARNING: {identified} of the {len(files)} files on this disc are NOT marked "
            "de-identified (Patient Identity Removed (0012,0062) is not YES)."
        )
    return (
        "De-identification: every file on this disc is marked Patient Identity Removed "
        "(0012,0062) = YES."
    )


def index_document(
    result: MediaBuildResult, *, policy: str, files: Sequence[SourceFile]
) -> dict[str, Any]:
    """What discs.json holds: one entry per disc, with its exams and files."""
    return {
        "format": INDEX_FORMAT,
        "trial": {
            "protocol_id": _single(files, "protocol_id", "ClinicalTrialProtocolID"),
            "protocol_name": _single(files, "protocol_name", "ClinicalTrialProtocolName"),
        },
        "policy": policy,
        "medium": result.medium.key,
        "load": result.load_hint,
        "discs": [_disc_document(d, len(result.discs)) for d in result.discs],
        "type1": result.type1_tree.name if result.type1_tree else None,
        "zips": [
            {"name": z.path.name, "bytes": z.bytes, "sha256": z.sha256, "files": z.files}
            for z in result.zips
        ],
    }


def _disc_document(disc: BuiltDiscRecord, count: int) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for entry in number_entries(f.entry for e in disc.exams for f in e.files):
        assert entry.file_id is not None
        size, sha256 = disc.hashes[entry.file_id.posix]
        files.append(
            {
                "file_id": entry.file_id.posix,
                "sop_instance_uid": entry.sop_instance_uid,
                "size": size,
                "sha256": sha256,
            }
        )
    return {
        "disc": disc.number,
        "of": count,
        "disc_id": disc.disc_id,
        "iso": disc.iso.name,
        "label": disc.label.name,
        "medium": disc.medium.key,
        "medium_label": disc.medium.label,
        "capacity_bytes": disc.medium.bytes,
        "image_bytes": disc.image_bytes,
        "sha256": disc.sha256,
        "manifest_sha256": disc.manifest_sha256,
        "fill_percent": round(100 * disc.image_bytes / disc.medium.bytes, 2),
        "exams": [
            {
                "subject": e.subject,
                "time_point": e.timepoint,
                "date": e.date,
                "modality": "/".join(e.modalities),
                "description": e.description,
                "site": e.site,
                "study_instance_uid": e.study_uid,
                "files": len(e.files),
                "bytes": sum(f.size for f in e.files),
            }
            for e in disc.exams
        ],
        "files": files,
    }


def _single(files: Sequence[SourceFile], attr: str, keyword: str) -> str:
    values = _unique(getattr(f, attr) for f in files)
    if len(values) > 1:
        raise ValidationError(
            f"the files hold {len(values)} different {keyword} values ({', '.join(values)}): "
            "build the discs of one trial at a time"
        )
    return values[0] if values else ""


def _unique(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})


def _summary(values: Iterable[str], noun: str) -> str:
    """A label-sized summary: up to three values, else first to last (n noun)."""
    unique = _unique(values)
    if len(unique) <= 3:
        return ", ".join(unique)
    return f"{unique[0]} to {unique[-1]} ({len(unique)} {noun})"


def _iso_date(value: str) -> str:
    if re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _write_bytes(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    with part.open("w", encoding="utf-8") as fp:  # streamed: discs.json lists every file
        json.dump(document, fp, indent=2)
        fp.write("\n")
    part.replace(path)


def _remove_stale(out_dir: Path, result: MediaBuildResult) -> None:
    """Discs of an earlier, larger build in the same folder would be mistaken for this set's."""
    current = {d.iso.name for d in result.discs} | {d.label.name for d in result.discs}
    for path in out_dir.iterdir():
        if _DISC_FILE.fullmatch(path.name) and path.name not in current:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _quiet(what: str, done: int, total: int) -> None:
    return None
