"""The disc build asks glibc for steady malloc settings (see trialship/media/arenas.py)."""

from __future__ import annotations

import platform

from trialship.media.arenas import use_steady_malloc


def test_steady_malloc_is_asked_for_once_and_granted_on_glibc() -> None:
    assert use_steady_malloc() is use_steady_malloc()  # once per process
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert use_steady_malloc() is True
