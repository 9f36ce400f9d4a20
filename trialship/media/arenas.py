"""malloc settings for a disc build: one arena, and large buffers kept for reuse.

glibc gives each thread that allocates under contention an arena of its own (up to eight per
core). A disc build's threads (the copy's hashing, the read-back, the fsync) hand buffers of a
megabyte or more to one another; freed into arenas other than the top of the one they came
from, they are not given back to the system. A full DVD of 40,000 files peaked at 200 MB of
RSS that way, and at 180 MB with one arena, in the same time: the threads wait on the disk or
inside hashlib, not on malloc.

Those buffers (1 MiB blocks, copied and read back) are above glibc's threshold for allocating by
mmap, or, once it has raised it, are given back to the system by trimming the heap as soon as
a few are freed: either way every new buffer starts as fresh pages the kernel must fault in
and zero, which cost as much as copying the data (1,000 files of 490 KB: 0.37-0.52 s to copy
and hash, 0.28 s with the thresholds fixed). With fixed thresholds the freed buffers are
reused; at most _TRIM of free memory stays with the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_MMAP = 32 * 1024 * 1024  # (glibc's largest): every buffer of a build comes from the heap
_TRIM = 64 * 1024 * 1024


@functools.cache
def use_steady_malloc() -> bool:
    """Ask glibc for a single malloc arena and fixed mmap and trim thresholds from now on
    (once per process). False where the C library has no mallopt, or refuses."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, _MMAP), (_M_TRIM_THRESHOLD, _TRIM))
    # (A list, not a generator: each setting is asked for, whatever the others answer.)
    return all([bool(mallopt(ctypes.c_int(key), ctypes.c_int(value))) for key, value in settings])
