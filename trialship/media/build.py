"""Build one disc image: DICOMDIR, manifest, ISO, read-back check. Folders come in as paths."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trialship.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from trialship.media.capacity import Medium
from trialship.media.dicomdir import DirEntry, write_dicomdir
from trialship.media.errors import MediaError
from trialship.media.fileid import FileId, validate_volume_id
from trialship.media.iso import ImageFile, write_iso
from trialship.media.manifest import (
    DICOMDIR_NAME,
    MANIFEST_NAME,
    README_NAME,
    ManifestRow,
    hash_bytes,
    hash_file,
    manifest_csv,
)
from trialship.media.verify import verify_image

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# PS3.11 Annex H / STD-GEN-DVD-JPEG and -J2K (and the BD equivalents): one family per disc.
_JPEG = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70"})
_J2K = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DiscFile:
    """A DICOM file for the disc: where it is now, its File ID there, and its header keys.
    `sha256` may be given when the caller already knows it (saves one read of the file)."""

    src_path: Path
    file_id: FileId
    entry: DirEntry
    sha256: str | None = None


@dataclass(frozen=True)
class BuiltDisc:
    path: Path
    bytes: int
    sha256: str
    files: int


def check_transfer_syntaxes(entries: Sequence[DirEntry], medium: Medium) -> None:
    """Refuse files the medium's General Purpose profile does not allow (PS3.11 D.2, H.2).

    CDs (STD-GEN-CD) take Explicit VR Little Endian only; DVD and BD take it plus either the
    JPEG or the JPEG 2000 family, not both on one disc.
    """
    families: set[str] = set()
    for entry in entries:
        syntax = entry.transfer_syntax_uid
        where = entry.file_id.posix if entry.file_id else entry.sop_instance_uid
        if syntax == EXPLICIT_VR_LE:
            continue
        if medium.is_cd:
            raise MediaError(
                f"{where} is in transfer syntax {syntax}; a CD holds Explicit VR Little Endian "
                "only: convert the file or put the exams on DVD"
            )
        if syntax in _JPEG:
            families.add("JPEG")
        elif syntax in _J2K:
            families.add("JPEG 2000")
        else:
            raise MediaError(
                f"{where} is in transfer syntax {syntax}, which no General Purpose DVD/BD "
                "profile allows: convert it to Explicit VR Little Endian"
            )
    if len(families) > 1:
        raise MediaError("a DVD/BD may hold JPEG or JPEG 2000 files, not both (PS3.11 Annex H)")


def build_disc(
    files: Sequence[DiscFile],
    out_iso: Path,
    *,
    fileset_id: str,
    fileset_uid: str,
    medium: Medium,
    readme_text: str,
    progress: Progress | None = None,
    verify: bool = True,
) -> BuiltDisc:
    """Write `out_iso` holding DICOMDIR, README.TXT, MANIFEST.CSV and `files` at their File IDs.

    The DICOMDIR is staged in a temporary folder beside `out_iso` (same file system, so no
    surprise about free space elsewhere). With `verify` the image is read back and compared
    with the manifest; a failed check removes the image. `progress(done, total)` counts bytes
    of work: hashing, writing, reading back.
    """
    if not files:
        raise MediaError("no files to put on disc")
    fileset_id = validate_volume_id(fileset_id)
    entries = [f.entry.with_file_id(f.file_id) for f in files]
    check_transfer_syntaxes(entries, medium)
    payload = sum(f.src_path.stat().st_size for f in files)
    to_hash = sum(f.src_path.stat().st_size for f in files if f.sha256 is None)
    meter = _Meter(progress, to_hash + payload * (2 if verify else 1))
    rows = [_row(f, meter) for f in files]
    readme = readme_text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    out_iso.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_iso.parent, prefix=".trialship-disc-") as tmp:
        dicomdir = Path(tmp) / DICOMDIR_NAME
        write_dicomdir(
            dicomdir,
            entries,
            fileset_id=fileset_id,
            fileset_uid=fileset_uid,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        )
        size, digest = hash_file(dicomdir)
        rows = [
            ManifestRow(DICOMDIR_NAME, "", size, digest),
            ManifestRow(README_NAME, "", *hash_bytes(readme)),
            *rows,
        ]
        image_files = [
            ImageFile(DICOMDIR_NAME, dicomdir),
            ImageFile(README_NAME, readme),
            ImageFile(MANIFEST_NAME, manifest_csv(rows)),
            *(ImageFile(f.file_id.posix, f.src_path) for f in files),
        ]
        start = meter.done
        nbytes = write_iso(
            out_iso,
            image_files,
            volume_id=fileset_id,
            medium=medium,
            progress=lambda done, total: meter.at(start + payload * done // max(total, 1)),
        )
    if not verify:
        _check_fits(out_iso, nbytes, medium)
        return BuiltDisc(out_iso, nbytes, hash_file(out_iso)[1], len(files))
    start = meter.done
    try:
        report = verify_image(
            out_iso,
            rows,
            medium=medium,
            progress=lambda done, total: meter.at(start + payload * done // max(total, 1)),
        )
    except MediaError:
        with contextlib.suppress(FileNotFoundError):
            out_iso.unlink()  # a disc that failed its check must not be burned by mistake
        raise
    return BuiltDisc(out_iso, report.image_bytes, report.image_sha256, len(files))


def _row(f: DiscFile, meter: _Meter) -> ManifestRow:
    if f.sha256 is None:
        size, digest = hash_file(f.src_path, meter.add)
    else:
        size, digest = f.src_path.stat().st_size, f.sha256
    return ManifestRow(f.file_id.posix, f.entry.sop_instance_uid, size, digest)


def _check_fits(image: Path, nbytes: int, medium: Medium) -> None:
    if nbytes > medium.bytes:
        image.unlink()
        raise MediaError(
            f"disc image {image} is {nbytes / 1e6:.1f} MB, more than a {medium.label} holds"
        )


class _Meter:
    """Turns the three phases into one monotonic (done, total) for a progress bar."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = max(total, 1)
        self.done = 0

    def add(self, n: int) -> None:
        self.at(self.done + n)

    def at(self, done: int) -> None:
        self.done = min(max(done, self.done), self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)
