"""The hashing threads give the same digests as hashlib, whatever the interleaving; the
read-back hashes a file in several extents as one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from trialship.media.hashing import HashPool
from trialship.media.verify import hash_extents


def test_interleaved_streams_hash_like_hashlib() -> None:
    data = {n: os.urandom(3000 * n + 1) for n in range(1, 30)}
    with HashPool(2, max_pending=4) as pool:
        pool.update("empty", b"")
        for offset in range(0, max(len(d) for d in data.values()), 4096):
            for key, blob in data.items():
                view = memoryview(blob)[offset : offset + 4096]
                if len(view):
                    pool.update(key, view)
        pool.update("alone", b"abc", worker=0)
        digests = pool.digests()
    assert digests["empty"] == (0, hashlib.sha256().hexdigest())
    assert digests["alone"] == (3, hashlib.sha256(b"abc").hexdigest())
    for key, blob in data.items():
        assert digests[key] == (len(blob), hashlib.sha256(blob).hexdigest())


def test_closing_twice_and_on_error_is_safe() -> None:
    pool = HashPool(1)
    pool.update(1, b"x" * 10_000)
    pool.close()
    pool.close()
    assert pool.digests()[1][0] == 10_000


def test_a_finished_stream_keeps_its_digest_and_takes_no_more() -> None:
    with HashPool(2) as pool:
        pool.update("a", b"x" * 5000)
        pool.update("b", b"y" * 7000)
        pool.finish("a")
        pool.update("b", b"z")
        with pytest.raises(ValueError, match="finished"):
            pool.update("a", b"more")
        with pytest.raises(ValueError, match="not a stream"):
            pool.finish("unknown")
        digests = pool.digests()
    assert digests["a"] == (5000, hashlib.sha256(b"x" * 5000).hexdigest())
    assert digests["b"] == (7001, hashlib.sha256(b"y" * 7000 + b"z").hexdigest())


def test_extents_in_several_runs_hash_as_one_file(tmp_path: Path) -> None:
    # A file over 4 GiB has one directory record per extent: its runs are hashed as one stream,
    # finished only after the last; a file between its runs is hashed on its own.
    image = tmp_path / "image"
    data = os.urandom(5 * 2048 * 1024)  # blocks of 4 MiB in hash_extents: runs cross them
    image.write_bytes(data)
    big = [(0, 3 * 1024 * 1024, "BIG"), (6 * 1024 * 1024, 2 * 1024 * 1024, "BIG")]
    small = (3 * 1024 * 1024 + 100, 5000, "SMALL")
    files, whole = hash_extents(image, [*big, small])
    joined = data[: 3 * 1024 * 1024] + data[6 * 1024 * 1024 : 8 * 1024 * 1024]
    assert files["BIG"] == (len(joined), hashlib.sha256(joined).hexdigest())
    part = data[3 * 1024 * 1024 + 100 : 3 * 1024 * 1024 + 5100]
    assert files["SMALL"] == (5000, hashlib.sha256(part).hexdigest())
    assert whole == (len(data), hashlib.sha256(data).hexdigest())


def test_streams_taken_one_at_a_time_finished_or_not_are_forgotten() -> None:
    with HashPool(2) as pool:
        pool.update("done", b"x" * 5000)
        pool.finish("done")
        pool.update("open", b"y" * 3000)
        assert pool.take("done") == (5000, hashlib.sha256(b"x" * 5000).hexdigest())
        assert pool.take("open") == (3000, hashlib.sha256(b"y" * 3000).hexdigest())
        assert pool.take("never given") is None
        assert pool.take("done") is None
        assert pool.digests() == {}
