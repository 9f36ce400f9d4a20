"""Content known only at the end (MANIFEST.CSV) reaches pycdlib in reads of any size, from
chunks of any size, and must be exactly the size laid out."""

from __future__ import annotations

import pytest

from trialship.media.errors import MediaError
from trialship.media.iso import Deferred, _Source


def _source(size: int, chunks: list[bytes]) -> _Source:
    return _Source("MANIFEST.CSV", Deferred(size, lambda: iter(chunks)), -1, None, lambda: None)


@pytest.mark.parametrize("read", [1, 3, 7, 100])
def test_chunks_are_read_back_whole_in_reads_of_any_size(read: int) -> None:
    chunks = [b"path,size\r\n", b"", b"A,1\r\n", b"BB,22\r\n", b"", b""]
    source = _source(sum(map(len, chunks)), chunks)
    got = b""
    while part := source.read(read):
        got += part
    assert got == b"".join(chunks)


@pytest.mark.parametrize(
    ("size", "chunks"), [(10, [b"12345"]), (4, [b"12", b"345"]), (2, [b"12", b"", b"3"])]
)
def test_content_shorter_or_longer_than_laid_out_fails(size: int, chunks: list[bytes]) -> None:
    source = _source(size, chunks)
    with pytest.raises(MediaError, match=f"not the {size} bytes laid out"):
        while source.read(2):
            pass
