"""Burn an ISO image with xorriso, then read the disc back and compare hashes.

The subprocess runner comes in as a parameter so callers and tests decide how xorriso runs.
`stdio:PATH` devices are libburn's pseudo drives (a file standing in for a disc); the tests
burn to them. Everything a caller needs to mark a disc "not burned" is in `BurnError.message`:
xorriso's own SORRY/FAILURE lines.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trialship.media.errors import MediaError

STDIO_PREFIX = "stdio:"
_CHUNK = 1 << 20
# xorriso's severities that mean the job failed (NOTE/UPDATE/WARNING are informational).
_FAILURE_SEVERITIES = (" SORRY : ", " FAILURE : ", " FATAL : ", " ABORT : ")


class Runner(Protocol):
    def __call__(
        self, args: Sequence[str], *, capture_output: bool, text: bool, check: bool
    ) -> subprocess.CompletedProcess[str]: ...


Progress = Callable[[str, float], None]
"""Called with a stage ("writing", "checking", "reading back", "done") and a fraction 0..1."""


class BurnError(MediaError):
    """Burning or reading back failed; `message` carries xorriso's own words."""

    def __init__(self, message: str, *, device: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.device = device
        self.returncode = returncode


@dataclass(frozen=True)
class BurnResult:
    """What happened. `ok`: written, and (if asked) verified; `verified`: read-back hash equal."""

    ok: bool
    verified: bool
    device: str
    image_sha256: str
    readback_sha256: str | None
    message: str


def xorriso_available(xorriso: str = "xorriso") -> bool:
    return shutil.which(xorriso) is not None


def burn_iso(
    iso_path: Path | str,
    device: str,
    *,
    run: Runner = subprocess.run,
    progress: Progress | None = None,
    verify: bool = True,
    xorriso: str = "xorriso",
    expected_sha256: str | None = None,
) -> BurnResult:
    """Write `iso_path` to `device` (`/dev/sr0`, or `stdio:/path/file`), then verify it.

    Verification reads back as many bytes as the image has (burners pad the track, so only
    the prefix can match) and compares SHA-256s; xorriso's `-check_media` first reports
    unreadable blocks. Raises `BurnError` when xorriso fails; a read-back that differs is
    returned with `ok` false and the reason in `message`. With `expected_sha256` (the image's
    hash when it was built and checked) an image that no longer matches is refused before a
    blank disc is spent on it.
    """
    report = progress or _no_progress
    image = Path(iso_path)
    if not image.is_file():
        raise BurnError(f"image not found: {image}", device=device)
    size = image.stat().st_size
    image_sha = _sha256_prefix(image, size)
    if expected_sha256 and image_sha != expected_sha256:
        raise BurnError(
            f"the image {image.name} changed since it was built and checked (SHA-256 "
            f"{image_sha[:12]}..., recorded {expected_sha256[:12]}...): rebuild it",
            device=device,
        )
    report("writing", 0.0)
    _run_xorriso(run, [xorriso, "-as", "cdrecord", "-v", f"dev={device}", str(image)], device)
    if not verify:
        report("done", 1.0)
        return BurnResult(True, False, device, image_sha, None, "written, not verified")
    report("checking", 0.5)
    bad = _check_media(run, xorriso, device)
    if bad:
        return BurnResult(False, False, device, image_sha, None, f"media check: {bad}")
    report("reading back", 0.6)
    node = Path(device.removeprefix(STDIO_PREFIX))
    try:
        readback = _sha256_prefix(node, size, lambda f: report("reading back", 0.6 + 0.4 * f))
    except OSError as exc:
        message = f"cannot read {node} back: {exc.strerror or exc}"
        return BurnResult(False, False, device, image_sha, None, message)
    report("done", 1.0)
    if readback != image_sha:
        message = f"read-back SHA-256 {readback} differs from the image's {image_sha}"
        return BurnResult(False, False, device, image_sha, readback, message)
    return BurnResult(True, True, device, image_sha, readback, "written and verified")


def _run_xorriso(run: Runner, args: list[str], device: str) -> subprocess.CompletedProcess[str]:
    try:
        done = run(args, capture_output=True, text=True, check=False)
    except OSError as exc:  # xorriso itself is missing or not executable
        raise BurnError(f"cannot run {args[0]}: {exc.strerror or exc}", device=device) from exc
    if done.returncode != 0:
        raise BurnError(xorriso_message(done), device=device, returncode=done.returncode)
    return done


def _check_media(run: Runner, xorriso: str, device: str) -> str:
    """xorriso's verdict on the medium: '' when every checked region is good."""
    done = _run_xorriso(run, [xorriso, "-indev", device, "-check_media", "--"], device)
    # "Media region :  lba , size , quality": '-' marks bad quality (unreadable, md5 mismatch).
    bad = [
        " ".join(line.split())
        for line in done.stdout.splitlines()
        if line.startswith("Media region") and line.rsplit(",", 1)[-1].strip().startswith("-")
    ]
    return "; ".join(bad)


def xorriso_message(done: subprocess.CompletedProcess[str]) -> str:
    """xorriso's own explanation: its SORRY/FAILURE/FATAL lines, else its last line."""
    output = f"{done.stderr or ''}\n{done.stdout or ''}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    failures = [line for line in lines if any(s in line for s in _FAILURE_SEVERITIES)]
    if failures:
        return "; ".join(failures)
    last = lines[-1] if lines else "no output"
    return f"xorriso exited with {done.returncode}: {last}"


def _sha256_prefix(
    path: Path, size: int, on_fraction: Callable[[float], None] | None = None
) -> str:
    """SHA-256 of the first `size` bytes; a shorter file hashes what is there."""
    digest = hashlib.sha256()
    remaining = size
    with path.open("rb") as stream:
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
            if on_fraction is not None and size:
                on_fraction((size - remaining) / size)
    return digest.hexdigest()


def _no_progress(stage: str, fraction: float) -> None:
    return None
