"""The hashing threads give the same digests as hashlib, whatever the interleaving."""

from __future__ import annotations

import hashlib
import os

from trialship.media.hashing import HashPool


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
