"""Disc media, their capacities, and the sector cost model used by the planner.

Capacities are the smaller of the +R/-R figures in standards.md section 3, so a plan that fits
one brand of blank fits the other. Every estimate rounds up: an over-estimate costs a little
space, an under-estimate costs a failed burn.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

SECTOR = 2048

# ISO 9660 fixed part: 16 sectors system area, PVD, terminator, four path tables (L, M and their
# optional copies as pycdlib writes them) and the root directory. Measured with pycdlib 1.22
# (an empty level-1 image is 24 sectors); 32 leaves room for the "DICOM" folder extent.
ISO_FIXED_SECTORS = 32
# README.TXT and the MANIFEST.CSV header; the caller's README may be up to this size.
README_ALLOWANCE_SECTORS = 32
# Safety margin on every disc: 0.5 % of the medium plus 64 sectors (128 KiB). It absorbs the
# approximations below (series count unknown to the planner, path-table growth) and burners
# that lose a few sectors to lead-out on some drives.
MARGIN_FRACTION = 0.005
MARGIN_SECTORS = 64

# DICOMDIR record sizes measured on our writer (dicomdir.py) with 64-char UIDs and 16-char
# names; tests/unit/media/test_dicomdir_build.py checks the measurement still holds.
DICOMDIR_HEADER_BYTES = 400
DICOMDIR_IMAGE_RECORD_BYTES = 400
DICOMDIR_SERIES_RECORD_BYTES = 500
DICOMDIR_STUDY_RECORD_BYTES = 500
DICOMDIR_PATIENT_RECORD_BYTES = 500
# One MANIFEST.CSV line: 40-char path, 64-char UID, size, 64 hex digits, separators.
MANIFEST_LINE_BYTES = 200
# ISO 9660 directory record: 33 bytes + name ("I0000001.;1" is 11) + pad to even.
_FILE_RECORD_BYTES = 33 + 12
_DIR_RECORD_BYTES = 33 + 8 + 1
# "." and ".." at the head of every directory extent.
_DOT_RECORDS_BYTES = 34 * 2
# Path table entry (8 + name + pad) written in four copies.
_PATH_TABLE_BYTES = (8 + 8) * 4


class Medium(enum.Enum):
    """A recordable disc type; `sectors` is what the planner may fill (2048-byte sectors)."""

    CD74 = ("cd74", 333_000, "CD-R 74 min")
    """650 MB CD-R; only when the site's blanks or drives are old."""
    CD80 = ("cd80", 360_000, "CD-R 80 min")
    """700 MB CD-R, the default CD."""
    DVD = ("dvd", 2_295_104, "DVD+R 4.7 GB")
    """Single-layer DVD (DVD+R figure, smaller than DVD-R)."""
    DVD_DL = ("dvd-dl", 4_171_712, "DVD-R DL 8.5 GB")
    """Dual-layer DVD (DVD-R DL figure, smaller than DVD+R DL)."""
    BD25 = ("bd25", 12_219_392, "BD-R 25 GB")
    """Single-layer Blu-ray."""

    def __init__(self, key: str, sectors: int, label: str) -> None:
        self.key = key
        self.sectors = sectors
        self.label = label

    @property
    def bytes(self) -> int:
        return self.sectors * SECTOR

    @property
    def is_cd(self) -> bool:
        return self in (Medium.CD74, Medium.CD80)

    @property
    def usable_sectors(self) -> int:
        """Sectors left for exams after the fixed image parts and the safety margin."""
        margin = math.ceil(self.sectors * MARGIN_FRACTION) + MARGIN_SECTORS
        return self.sectors - margin - ISO_FIXED_SECTORS - README_ALLOWANCE_SECTORS

    @classmethod
    def from_key(cls, key: str) -> Medium:
        for medium in cls:
            if medium.key == key.lower():
                return medium
        known = ", ".join(m.key for m in cls)
        raise ValueError(f"unknown medium {key!r} (known: {known})")


# Preference on a tie in disc count: CD before DVD before Blu-ray; CD-R 80 before 74 because
# 80-minute blanks are what offices buy today.
PREFERENCE: tuple[Medium, ...] = (
    Medium.CD80,
    Medium.CD74,
    Medium.DVD,
    Medium.DVD_DL,
    Medium.BD25,
)


@dataclass(frozen=True)
class ExamSize:
    """What the planner knows of one exam: its file sizes and where it belongs.

    `series_count` sharpens the directory estimate; 1 is a fine default because each extra
    series costs about 3 KB, well inside the margin.
    """

    exam_key: str
    bytes_per_file: tuple[int, ...]
    subject: str
    timepoint: str
    series_count: int = 1

    def __post_init__(self) -> None:
        if not self.bytes_per_file:
            raise ValueError(f"exam {self.exam_key!r} has no files")
        if any(size < 0 for size in self.bytes_per_file):
            raise ValueError(f"exam {self.exam_key!r} has a negative file size")
        if self.series_count < 1:
            raise ValueError(f"exam {self.exam_key!r}: series_count must be at least 1")

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_per_file)

    @property
    def megabytes(self) -> float:
        return self.total_bytes / 1_000_000


def _sectors(nbytes: int) -> int:
    return -(-nbytes // SECTOR)


def _directory_sectors(records: int, record_bytes: int) -> int:
    # ISO 9660 records never straddle a sector, so fill whole records per sector.
    per_sector = (SECTOR - _DOT_RECORDS_BYTES) // record_bytes
    return max(1, math.ceil(records / per_sector))


def exam_sectors(exam: ExamSize) -> int:
    """Sectors an exam adds to a disc: files, folders, DICOMDIR records and manifest lines.

    Each exam is charged its own patient folder and record even when it shares the subject with
    another exam on the same disc: a small over-estimate that keeps the cost additive, which the
    packer needs.
    """
    n_files = len(exam.bytes_per_file)
    files = sum(_sectors(size) for size in exam.bytes_per_file)
    # Series folders hold the files; the study folder holds the series; the patient folder holds
    # the study. The patient's entry sits in the shared "DICOM" folder.
    per_series = math.ceil(n_files / exam.series_count)
    folders = exam.series_count * _directory_sectors(per_series, _FILE_RECORD_BYTES)
    folders += _directory_sectors(exam.series_count, _DIR_RECORD_BYTES) + 1
    parent_records = (exam.series_count + 2) * (_DIR_RECORD_BYTES + _PATH_TABLE_BYTES)
    dicomdir = (
        n_files * DICOMDIR_IMAGE_RECORD_BYTES
        + exam.series_count * DICOMDIR_SERIES_RECORD_BYTES
        + DICOMDIR_STUDY_RECORD_BYTES
        + DICOMDIR_PATIENT_RECORD_BYTES
    )
    manifest = n_files * MANIFEST_LINE_BYTES
    return files + folders + _sectors(parent_records + dicomdir + manifest) + 1
