"""One malloc arena for the process while discs are built.

glibc gives each thread that allocates under contention an arena of its own (up to eight per
core). A disc build's threads (the copy's hashing, the read-back, the fsync) hand buffers of a
megabyte or more to one another; freed into arenas other than the top of the one they came
from, they are not given back to the system. A full DVD of 40,000 files peaked at 200 MB of
RSS that way, and at 180 MB with one arena, in the same time: the threads wait on the disk or
inside hashlib, not on malloc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache
def use_one_malloc_arena() -> bool:
    """Ask glibc for a single malloc arena from now on (once per process). False where the C
    library has no mallopt, or refuses."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(1)))
