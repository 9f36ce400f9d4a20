"""Inputs that intake must name and refuse well: odd names, zips built in memory, folders that
cannot be listed (and commands run bound by permissions, as the office's users are, even
from root)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOT_UTF8 = os.fsdecode(b"bad\xff\xfename")
"""A file name that is not UTF-8, as the OS hands it over (surrogate-escaped)."""

# Root reads any folder: without these capabilities it meets the permissions others do.
WITHOUT_ROOT_OVERRIDES = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]


def as_a_user(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """`argv` run to its end, its output captured as text; under root, without its overrides."""
    prefix = WITHOUT_ROOT_OVERRIDES if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=False, **options)


def trialship_as_a_user(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`trialship ARGS`, run as a user (see `as_a_user`)."""
    return as_a_user([sys.executable, "-m", "trialship", *args], cwd=cwd)


@contextmanager
def unlistable(folder: Path) -> Iterator[Path]:
    """`folder` with no permission at all (mode 000) for the time of the block."""
    folder.chmod(0)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip of `entries` (name: bytes), deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()
