"""The read-back's check that the image's own directory places every file where it was
written, record by record (a file over 4 GiB has one record per extent, end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialship.media import verify
from trialship.media.errors import MediaError

GIB4 = 0xFFFFF800  # the largest extent a Level 3 record describes


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    records: list[tuple[str, int, int]] = []

    monkeypatch.setattr(verify, "_with_directory", lambda image, work: work(object()))
    monkeypatch.setattr(verify, "_records", lambda iso: iter(records))
    return records


def test_files_in_one_or_several_extents_and_empty_files_pass(directory) -> None:
    big = GIB4 + 4096
    layout = [(0, 10, "A"), (2048, big, "BIG"), (2048 + big + 2048, 0, "EMPTY")]
    directory += [("A", 0, 10), ("BIG", 2048, GIB4), ("BIG", 2048 + GIB4, 4096), ("EMPTY", 0, 0)]
    verify._check_placed(Path("disc.iso"), layout)


@pytest.mark.parametrize(
    ("records", "named"),
    [
        ([("A", 2048, 10), ("B", 4096, 5)], "A"),  # not where it was written
        ([("A", 0, 10)], "B"),  # missing
        ([("A", 0, 10), ("B", 4096, 5), ("C", 8192, 1)], "C"),  # not written at all
        ([("A", 0, 6), ("A", 8, 4), ("B", 4096, 5)], "A"),  # extents not end to end
        ([("A", 0, 6), ("B", 4096, 5)], "A"),  # not whole
    ],
)
def test_a_file_elsewhere_missing_or_extra_fails_naming_it(
    directory, records: list[tuple[str, int, int]], named: str
) -> None:
    directory += records
    with pytest.raises(MediaError, match=f"does not place {named} where it was written"):
        verify._check_placed(Path("disc.iso"), [(0, 10, "A"), (4096, 5, "B")])
