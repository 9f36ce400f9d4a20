"""`trialship deid` (standalone de-identification, no database) and `trialship receipt verify`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from trialship.cli import data_dir, main
from trialship.deid import Profile, ProfileError, parse_profile
from trialship.deid.receipt import verify_receipt
from trialship.errors import ValidationError
from trialship.services.deid_files import (
    Assignment,
    DeidRun,
    Outcome,
    OutputFull,
    load_map,
    run_deid,
    verify_receipt_files,
)
from trialship.signing import PUBLIC_KEY_FILE, load_or_create_signing_key, load_public_key

EXIT_REJECTED = 3
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # (128 + SIGINT, as a shell reports Ctrl-C)
EXIT_SIGTERM = 128 + signal.SIGTERM


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _read_profile(path: Path) -> Any:
    def read_secret(name: str) -> bytes:
        secret_path = Path(name)
        if not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        try:
            return secret_path.read_bytes().strip()
        except OSError as exc:
            raise ProfileError("deid.uid_secret_file", f"cannot read: {exc.strerror}") from None

    try:
        profile = parse_profile(path.read_text(encoding="utf-8"), read_secret_file=read_secret)
    except ProfileError as exc:
        _fail(f"{path.name}: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the profile {path}: {exc}")
    if not profile.uid_secret:
        _fail(f"{path.name}: deid.uid_secret: is required (or deid.uid_secret_file)")
    return profile


MAX_DEFAULT_JOBS = 8
"""Beyond this many processes the disk, not the CPU, sets the pace."""


def default_jobs() -> int:
    """One job per CPU core this process may run on (a container's limit included)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_JOBS))


@main.command("deid")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--profile", "profile_path", required=True, type=click.Path(path_type=Path))
@click.option("--map", "map_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--subject", default=None, help="Assign every input to this subject ID.")
@click.option("--site", default="", help="The site ID (with --subject).")
@click.option("--site-name", default="", help="The site name (with --subject).")
@click.option("--timepoint", default="", help="The time point ID (with --subject).")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    help=f"Files de-identified at once, each job a process [default: one per CPU core, at most "
    f"{MAX_DEFAULT_JOBS}].",
)
@click.pass_context
def deid(
    ctx: click.Context,
    sources: tuple[Path, ...],
    out: Path,
    profile_path: Path,
    map_path: Path | None,
    subject: str | None,
    site: str,
    site_name: str,
    timepoint: str,
    jobs: int | None,
) -> None:
    """De-identify SOURCES (files, folders, zips) into OUT with PROFILE.toml, no database.

    Exit 0 when every input was de-identified, 3 when some were rejected, 2 on usage errors.
    """
    if (map_path is None) == (subject is None):
        _fail("give either --map MAP.csv or --subject ID (with --site, --timepoint)")
    assign = (
        _assignment(subject=subject, site=site, site_name=site_name, timepoint=timepoint)
        if subject is not None
        else None
    )
    profile = _read_profile(profile_path)
    subject_map = None
    if map_path is not None:
        try:
            subject_map = load_map(map_path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            _fail(f"{map_path.name}: {exc.message}")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the map {map_path}: {exc}")
    _check_replacements(profile, subject_map.assignments() if subject_map else [assign])
    key = load_or_create_signing_key(data_dir(ctx))
    run = DeidRun(
        sources=sources,
        out=out,
        profile=profile,
        signing_key=key,
        assign=assign,
        subject_map=subject_map,
        jobs=jobs or default_jobs(),
    )
    # (signal handlers belong to the main thread: a caller running the command in another
    # thread keeps its own)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        result = _run_with_progress(run)
    except ValidationError as exc:  # the --out folder, refused before anything is written
        _fail(f"--{exc}")
    except OutputFull as exc:
        _fail(f"stopped: {exc}", 1)
    except (KeyboardInterrupt, _Terminated) as exc:
        # The files in progress are dropped (their scratch goes with the run); those done stay.
        _fail(
            f"stopped: {out} is incomplete (no report or receipts yet): run the same command "
            "again to finish it",
            EXIT_SIGTERM if isinstance(exc, _Terminated) else EXIT_INTERRUPTED,
        )
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    done = sum(1 for outcome in result.outcomes if outcome.status != "rejected")
    for outcome in result.rejected:
        click.echo(f"rejected: {outcome.label}: {outcome.reason}", err=True)
    click.echo(
        f"{done} of {len(result.outcomes)} input(s) de-identified into {out}; "
        f"{len(result.rejected)} rejected; {len(result.receipts)} receipt(s); "
        f"report {result.report}"
    )
    sys.exit(EXIT_REJECTED if result.rejected else 0)


class _Terminated(Exception):
    """SIGTERM arrived: stop as Ctrl-C does (workers stopped, scratch removed), not mid-file."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


_OPTIONS = {
    "subject_id": "--subject",
    "site_id": "--site",
    "site_name": "--site-name",
    "timepoint_id": "--timepoint",
}


def _assignment(*, subject: str, site: str, site_name: str, timepoint: str) -> Assignment:
    """The --subject options as an Assignment (validated there, as the map's rows are)."""
    try:
        return Assignment(
            subject_id=subject.strip(),
            site_id=site.strip(),
            site_name=site_name.strip(),
            timepoint_id=timepoint.strip(),
        )
    except ValidationError as exc:
        _fail(f"{_OPTIONS.get(exc.field or '', exc.field)}: {exc.message}")


def _check_replacements(profile: Profile, assignments: Iterable[Assignment | None]) -> None:
    """Every subject's replacements fit their VRs, found before any file is read."""
    for assignment in sorted(filter(None, assignments), key=lambda a: a.subject_id):
        try:
            profile.replacements(assignment.placeholders())
        except ProfileError as exc:
            _fail(f"subject {assignment.subject_id}: {exc}")


def _run_with_progress(run: DeidRun) -> Any:
    if not sys.stderr.isatty():
        return run_deid(run)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    # Drawn from this thread, not by rich's refresh thread: the worker processes are forked
    # while the bar is up, and a fork copies the locks another thread holds (a child that
    # then wrote a warning to stderr could wait for the bar's lock forever).
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=None,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("de-identifying", total=None)
        drawn = [0.0]

        def advance(_: Outcome) -> None:
            bar.advance(task)
            now = time.monotonic()
            if now - drawn[0] >= _REDRAW_EVERY:
                drawn[0] = now
                bar.refresh()

        return run_deid(run, progress=advance)


_REDRAW_EVERY = 0.1
"""Seconds between two drawings of the bar (as rich's own refresh, ten a second)."""


@main.group()
def receipt() -> None:
    """Signed receipts: verify."""


@receipt.command("verify")
@click.argument("receipt_path", metavar="RECEIPT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--files", "files", type=click.Path(file_okay=False, path_type=Path))
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def receipt_verify(
    ctx: click.Context, receipt_path: Path, files: Path | None, public_key: Path | None
) -> None:
    """Check RECEIPT's signature and, with --files DIR, the hashes of its output files."""
    try:
        document = json.loads(receipt_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the receipt: {exc}", 1)
    key_path = public_key or data_dir(ctx) / PUBLIC_KEY_FILE
    try:
        key = load_public_key(key_path)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the public key {key_path}: {exc}", 1)
    if not isinstance(document, dict) or not verify_receipt(document, key):
        _fail("the signature does not match (changed, or signed by another key)", 1)
    if files is not None:
        problem = verify_receipt_files(document, files)
        if problem:
            _fail(problem, 1)
    click.echo(
        f"OK: {receipt_path.name} is signed by this key"
        + (" and matches the files" if files else "")
    )
