"""Write an ISO 9660 image with pycdlib, streamed, and only ever complete under its final name.

CDs get Interchange Level 1 (PS3.12 F.2.2); DVD and Blu-ray get Level 3 (PS3.12 P.2.2), which
keeps the same 8.3 names but lets a file over 4 GiB span extents. No Joliet, Rock Ridge or UDF:
pycdlib writes only UDF 2.60, outside PS3.12 (standards.md section 5).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from trialship.media.capacity import Medium
from trialship.media.errors import FileIdError, MediaError
from trialship.media.fileid import is_conformant_component, validate_volume_id

# pycdlib copies file data in blocks of this size; 1 MiB instead of its 32 KiB default cuts the
# Python overhead per byte, and stays a fixed, small amount of memory.
_BLOCK = 1024 * 1024
_LEVEL1_NAME = re.compile(r"[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3})?")


@dataclass(frozen=True)
class ImageFile:
    """A file to put on the disc: `name` relative to the root ("DICOM/P0000001/.../I0000001",
    "README.TXT"), content from a path (read while the image is written) or from bytes."""

    name: str
    source: Path | bytes

    def __post_init__(self) -> None:
        *folders, leaf = self.name.split("/")
        for folder in folders:
            if not is_conformant_component(folder):
                raise FileIdError(f"folder {folder!r} of {self.name} is not an ISO 9660 name")
        if not _LEVEL1_NAME.fullmatch(leaf):
            raise FileIdError(
                f"file name {leaf!r} of {self.name} is not allowed by ISO 9660 Level 1 "
                "(1-8 characters A-Z, 0-9, _ and an optional extension of up to 3)"
            )

    @property
    def iso_path(self) -> str:
        # A name without extension is written "NAME.;1" (PS3.12 F.1.2.1, ECMA-119 7.5).
        return "/" + self.name + ("" if "." in self.name.rsplit("/", 1)[-1] else ".") + ";1"

    @property
    def folders(self) -> list[str]:
        parts = self.name.split("/")[:-1]
        return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def interchange_level(medium: Medium) -> int:
    return 1 if medium.is_cd else 3


def write_iso(
    out: Path,
    files: Sequence[ImageFile],
    *,
    volume_id: str,
    medium: Medium,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the image to `out` and return its size in bytes.

    The image is written to `out` + ".part" and renamed when complete, so a reader never sees
    half an image under the final name. On any failure the partial file is removed and a
    MediaError names `out`.
    """
    volume_id = validate_volume_id(volume_id, what="Volume ID")
    part = out.with_name(out.name + ".part")
    iso = pycdlib.PyCdlib()
    try:
        iso.new(interchange_level=interchange_level(medium), vol_ident=volume_id)
        _add_all(iso, files)
        with part.open("wb") as fp:
            iso.write_fp(fp, blocksize=_BLOCK, progress_cb=_adapt(progress))
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(part, out)
    except (OSError, PyCdlibException) as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        reason = str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        raise MediaError(f"could not write the disc image {out}: {reason}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    finally:
        with contextlib.suppress(PyCdlibException):
            iso.close()
    return out.stat().st_size


def _add_all(iso: pycdlib.PyCdlib, files: Sequence[ImageFile]) -> None:
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise MediaError(f"{duplicate} is listed twice for the disc image")
    # Parents before children; sorted so the same files always give the same image layout.
    folders = {folder for f in files for folder in f.folders}
    for folder in sorted(folders, key=lambda p: (p.count("/"), p)):
        iso.add_directory(folder)
    for f in files:
        if isinstance(f.source, bytes):
            iso.add_fp(io.BytesIO(f.source), len(f.source), f.iso_path)
        else:
            # add_file keeps only the path and size; pycdlib reads the file during write_fp.
            iso.add_file(str(f.source), f.iso_path)


def _adapt(
    progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, object], None] | None:
    if progress is None:
        return None

    def callback(done: int, total: int, _opaque: object) -> None:
        progress(done, total)

    return callback
