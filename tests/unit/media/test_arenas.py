"""The disc build asks glibc for one malloc arena (see trialship/media/arenas.py)."""

from __future__ import annotations

import platform

from trialship.media.arenas import use_one_malloc_arena


def test_one_malloc_arena_is_asked_for_once_and_granted_on_glibc() -> None:
    assert use_one_malloc_arena() is use_one_malloc_arena()  # once per process
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert use_one_malloc_arena() is True
