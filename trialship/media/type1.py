"""HIRO "Type 1" delivery: the exams as a plain folder tree, whole or in size-limited zips.

Layout: `subject/studydate_uid_description/MMn_description/NNNNN.dcm` (MM the modality, n the
series number, NNNNN the instance's place in its series). Names keep A-Z, a-z, 0-9, `.` and
`-` and turn anything else into `_`, so every file system and every zip tool takes them. The
values come from de-identified headers (trial subject ID, remapped UIDs), so no name carries
more than the files do. Planning is pure; the two writers only copy bytes.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trialship.media.errors import MediaError
from trialship.media.manifest import hash_file

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
_MAX_DESCRIPTION = 40
# Zip bookkeeping per entry, stored (not deflated): local header 30 + central header 46 + the
# name twice + zip64 extras (20 + 28) + slack. The end records: 22 + zip64 56 + locator 20.
_ZIP_ENTRY_OVERHEAD = 160
_ZIP_END_OVERHEAD = 200


@dataclass(frozen=True)
class Type1Instance:
    """What the tree needs of one file: where it is and the header values that name it."""

    source: Path
    size: int
    subject: str
    study_date: str
    study_uid: str
    study_description: str
    modality: str
    series_uid: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    sop_instance_uid: str


@dataclass(frozen=True)
class TreeFile:
    """One file of the tree: its "/"-separated path below the tree's root, and its source."""

    path: str
    source: Path
    size: int


@dataclass(frozen=True)
class WrittenZip:
    path: Path
    bytes: int
    sha256: str
    files: int


def safe_name(text: str, *, limit: int = _MAX_DESCRIPTION) -> str:
    """`text` with only safe characters: runs of anything else become one `_`."""
    return _UNSAFE.sub("_", text).strip("_.")[:limit].rstrip("_.")


def plan_tree(instances: Iterable[Type1Instance]) -> list[TreeFile]:
    """The tree's files in reading order (subject, study date, series number, instance number).

    Two studies or series that would get the same folder name get `_2`, `_3`... appended.
    """
    ordered = sorted(
        instances,
        key=lambda i: (
            i.subject,
            i.study_date,
            i.study_uid,
            i.series_number or 0,
            i.series_uid,
            i.instance_number or 0,
            i.sop_instance_uid,
        ),
    )
    study_dirs: dict[tuple[str, str], str] = {}
    series_dirs: dict[tuple[str, str], str] = {}
    counters: dict[str, int] = {}
    taken: set[str] = set()
    out: list[TreeFile] = []
    for inst in ordered:
        subject = safe_name(inst.subject) or "UNKNOWN"
        study_key = (inst.subject, inst.study_uid)
        if study_key not in study_dirs:
            name = _join(inst.study_date or "nodate", inst.study_uid, inst.study_description)
            study_dirs[study_key] = _unique(f"{subject}/{name}", taken)
        series_key = (inst.study_uid, inst.series_uid)
        if series_key not in series_dirs:
            number = "" if inst.series_number is None else str(inst.series_number)
            head = safe_name(inst.modality or "OT") + number
            series_dirs[series_key] = _unique(
                f"{study_dirs[study_key]}/{_join(head, inst.series_description)}", taken
            )
        folder = series_dirs[series_key]
        counters[folder] = counters.get(folder, 0) + 1
        out.append(TreeFile(f"{folder}/{counters[folder]:05d}.dcm", inst.source, inst.size))
    return out


def write_tree(files: Sequence[TreeFile], root: Path) -> Path:
    """Copy `files` under `root`, built beside it and renamed, so `root` is complete or absent."""
    if root.exists():
        raise MediaError(f"{root} exists already: remove it or choose another folder")
    staging = root.with_name(f".{root.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for f in files:
            target = staging / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f.source, target)
        staging.rename(root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise MediaError(f"cannot write the Type 1 tree {root}: {exc.strerror or exc}") from exc
    return root


def plan_zips(files: Sequence[TreeFile], limit: int) -> list[list[TreeFile]]:
    """Split `files` in order into zips of at most `limit` bytes each. A file is never split:
    a file larger than the limit goes alone into a zip that is over the limit."""
    if limit <= _ZIP_END_OVERHEAD:
        raise MediaError(f"a zip size limit of {limit} bytes is too small")
    parts: list[list[TreeFile]] = []
    used = limit + 1
    for f in files:
        cost = f.size + 2 * len(f.path.encode("utf-8")) + _ZIP_ENTRY_OVERHEAD
        if used + cost > limit:
            parts.append([])
            used = _ZIP_END_OVERHEAD
        parts[-1].append(f)
        used += cost
    return parts


def write_zips(
    files: Sequence[TreeFile], folder: Path, *, stem: str, limit: int | None = None
) -> list[WrittenZip]:
    """Write `stem_001.zip`, `stem_002.zip`, ... (stored, zip64 when needed) into `folder`.

    Each zip is written under a `.part` name and renamed when complete.
    """
    parts = plan_zips(files, limit) if limit else [list(files)]
    folder.mkdir(parents=True, exist_ok=True)
    written: list[WrittenZip] = []
    for number, part in enumerate(parts, 1):
        path = folder / f"{safe_name(stem) or 'EXAMS'}_{number:03d}.zip"
        staging = path.with_name(path.name + ".part")
        try:
            with zipfile.ZipFile(staging, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for f in part:
                    archive.write(f.source, f.path)
            staging.replace(path)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            raise MediaError(f"cannot write {path}: {exc.strerror or exc}") from exc
        size, digest = hash_file(path)
        written.append(WrittenZip(path, size, digest, len(part)))
    return written


def _join(*parts: str) -> str:
    return "_".join(p for p in (safe_name(part) for part in parts) if p)


def _unique(path: str, taken: set[str]) -> str:
    candidate, n = path, 1
    while candidate.lower() in taken:  # case-insensitive file systems (Windows, macOS)
        n += 1
        candidate = f"{path}_{n}"
    taken.add(candidate.lower())
    return candidate
