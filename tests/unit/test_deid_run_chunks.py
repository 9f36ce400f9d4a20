"""How a de-identification run hands its files to the worker processes: every file once, in
order, a small list per worker first, then a larger one each, then lists that shrink towards
the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trialship.services.deid_files import MAX_CHUNK, MIN_CHUNK, chunks


@pytest.mark.parametrize("count", [0, 1, 3, 4, 7, 8, 9, 100, 1000, 5003])
@pytest.mark.parametrize("jobs", [2, 3, 8])
def test_every_file_is_handed_out_once_in_order(count: int, jobs: int) -> None:
    handed = list(chunks(iter(range(count)), jobs))
    assert [task for chunk in handed for task in chunk] == list(range(count))
    assert all(chunk for chunk in handed)
    assert all(len(chunk) <= MAX_CHUNK for chunk in handed)


def test_each_worker_starts_on_a_small_list_before_the_folder_is_listed() -> None:
    listed: list[int] = []

    def listing() -> Iterator[int]:
        for number in range(1000):
            listed.append(number)
            yield number

    handed = chunks(listing(), 2)
    assert next(handed) == list(range(MIN_CHUNK))
    assert next(handed) == list(range(MIN_CHUNK, 2 * MIN_CHUNK))
    assert len(listed) == 2 * MIN_CHUNK
    # Then a larger list each, still before the rest is listed: work for the workers while the
    # parent lists the folder on the cores they share.
    assert next(handed) == list(range(2 * MIN_CHUNK, 6 * MIN_CHUNK))
    assert next(handed) == list(range(6 * MIN_CHUNK, 10 * MIN_CHUNK))
    assert len(listed) == 10 * MIN_CHUNK


def test_lists_are_large_in_the_middle_and_small_at_the_end() -> None:
    sizes = [len(chunk) for chunk in chunks(iter(range(1000)), 2)]
    assert max(sizes) == MAX_CHUNK
    assert all(size <= MIN_CHUNK for size in sizes[-4:])
    assert sizes[:4] == [MIN_CHUNK, MIN_CHUNK, 4 * MIN_CHUNK, 4 * MIN_CHUNK]
    assert sizes[4:] == sorted(sizes[4:], reverse=True)
    assert len(sizes) < 1000 / 16
