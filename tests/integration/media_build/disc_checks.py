"""Reading a built disc with the real tools: isoinfo, osirrox, dciodvfy, pdftotext."""

from __future__ import annotations

import subprocess
from pathlib import Path


def extract(tools: dict[str, str], iso: Path, into: Path) -> Path:
    """The disc's files as a viewer sees them (osirrox extracts read-only: make them writable)."""
    subprocess.run(
        [tools["osirrox"], "-indev", str(iso), "-extract", "/", str(into)],
        capture_output=True,
        check=True,
    )
    subprocess.run(["chmod", "-R", "u+w", str(into)], check=True)
    return into


def dciodvfy_errors(tools: dict[str, str], dicomdir: Path) -> list[str]:
    done = subprocess.run(
        [tools["dciodvfy"], str(dicomdir)], capture_output=True, text=True, check=False
    )
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]


def pdf_text(tools: dict[str, str], pdf: Path) -> str:
    done = subprocess.run(
        [tools["pdftotext"], str(pdf), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def volume_id(tools: dict[str, str], iso: Path) -> str:
    done = subprocess.run(
        [tools["isoinfo"], "-d", "-i", str(iso)], capture_output=True, text=True, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("Volume id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"isoinfo printed no volume id:\n{done.stdout}")
