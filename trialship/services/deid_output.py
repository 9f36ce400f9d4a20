"""The output folder of a standalone de-identification run: claimed for the run alone, and the
names of its tree.

The folder belongs to one run: it must be new or empty, and lie apart from the sources, so that
nothing of an earlier run is overwritten and no output is read back as an input. The one
exception is a run that stopped before its end (killed, Ctrl-C, a full disk): its journal says
what it did, and the same command, run again, finishes it. Each folder of
the tree holds one subject, time point or series, whatever their IDs, numbers and case: a name
another owner has in the same folder is not given twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trialship.errors import ValidationError

SCRATCH_PREFIX = ".trialship-partial-"
"""How the files a run writes before they have their name begin (each is renamed into the tree
or removed before the run ends). They lie in the output folder itself, not in a folder of their
own: removing that folder at the end freed its block, and on ext4 mounted with `discard` and
no journal (these machines' root) freeing a block waits for a discard queued behind every write
in flight, 0.1-1 s at the end of a run."""
JOURNAL_FILE = ".trialship-run.jsonl"
"""What a run has done so far, a line a file, its first line naming the run (removed once the
report is written): a run stopped before its end is finished by the same command."""
REPORT_FILE = "deid-report.json"
RECEIPTS_DIR = "receipts"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)
_NAME_LIMIT = 64


def safe_name(value: str, default: str) -> str:
    cleaned = _UNSAFE.sub("_", value.strip()).strip("._")
    return cleaned[:_NAME_LIMIT] or default


def id_folder_names(value: str, default: str) -> Iterator[str]:
    """Folder names for a subject or time point ID, best first.

    The ID itself when it is already a safe name (IDs are not PHI); else the safe name with a
    short hash of the ID, so that `SUBJ 1` and `SUBJ/1` stay apart, whatever else is in the run.
    """
    plain = safe_name(value, default)
    if (plain == value or not value) and not _WINDOWS_RESERVED.fullmatch(plain):
        yield plain
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    hashed = f"{plain[: _NAME_LIMIT - 16]}_{digest}"
    yield hashed
    yield from numbered(hashed)


def series_folder_names(series_number: int) -> Iterator[str]:
    """Folder names for a series: its number, then the number with `_2`, `_3`... (another series
    of the subject's time point, in this study or another, may carry the same number)."""
    base = f"S{series_number:04d}"
    yield base
    yield from numbered(base)


def numbered(base: str) -> Iterator[str]:
    return (f"{base}_{n}" for n in itertools.count(2))


class UniqueNames:
    """Names unique within their parent folder, each given once to its owner (in the order of
    asking: the inputs' order). Compared without case: Windows, macOS, ISO 9660 and many zip
    readers fold it, and two folders that differ only by case would merge there."""

    def __init__(self) -> None:
        self._given: dict[tuple[str, Hashable], str] = {}
        self._owners: dict[tuple[str, str], Hashable] = {}

    def name(self, parent: str, owner: Hashable, candidates: Callable[[], Iterable[str]]) -> str:
        """The owner's name under `parent`: the first candidate no other owner has there."""
        given = self._given.get((parent, owner))
        if given is None:
            folded = parent.casefold()
            given = next(c for c in candidates() if (folded, c.casefold()) not in self._owners)
            self._owners[(folded, given.casefold())] = owner
            self._given[(parent, owner)] = given
        return given


@contextmanager
def claimed_out(sources: Iterable[Path], out: Path, run_key: str) -> Iterator[list[dict[str, Any]]]:
    """`out`, created or empty, held for this run alone (an exclusive lock on the folder while
    the block runs); yields what the unfinished run `run_key` did there already (its journal's
    records; none for a new folder). Raises ValidationError (field "out").

    Nothing of an earlier run may be overwritten, so anything in `out` refuses it, but for the
    scratch files a killed run of ours left (`SCRATCH_PREFIX`: the lock says no live run is
    using them, so they are removed) and what the same run did before it stopped.
    """
    refuse_overlap(sources, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ValidationError(f"cannot use {out}: {exc.strerror}", field="out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValidationError(f"another run is writing into {out}", field="out") from None
        except OSError:
            pass  # a file system without locks (some network ones): the emptiness check stays
        records = _unfinished_run(out, run_key)
        remove_scratch(out)
        yield records
    finally:
        os.close(fd)  # (releases the lock)


def scratch_path(out: str | os.PathLike[str], index: int, token: str) -> str:
    """Where the file of input `index` is written before it has its name (`token`: the
    worker's, so that no other run or worker uses the name). A string: pathlib's joining costs
    more than the file's creation."""
    return os.path.join(out, f"{SCRATCH_PREFIX}{index:08d}-{token}.part")


def remove_scratch(out: Path) -> None:
    """Remove the scratch files in `out` (a stopped run's, or what a run leaves as it ends)."""
    with os.scandir(out) as entries:
        scratch = [entry.path for entry in entries if _is_scratch(entry)]
    for path in scratch:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _is_scratch(entry: os.DirEntry[str]) -> bool:
    return entry.name.startswith(SCRATCH_PREFIX) and entry.is_file(follow_symlinks=False)


def _unfinished_run(out: Path, run_key: str) -> list[dict[str, Any]]:
    """The journal records of the unfinished run `run_key` in `out` (none in an empty folder);
    ValidationError for anything else there."""
    with os.scandir(out) as entries:
        held = sorted(entry.name for entry in entries if not _is_scratch(entry))
    if JOURNAL_FILE in held and REPORT_FILE in held:
        # Stopped after its report and before its journal's removal: the run is finished.
        (out / JOURNAL_FILE).unlink()
        held.remove(JOURNAL_FILE)
    if JOURNAL_FILE in held:
        records = read_journal(out / JOURNAL_FILE)
        if not records or records[0].get("run") != run_key:
            raise ValidationError(
                f"{out} holds an unfinished run of other sources, subjects or profile: run "
                "that command again to finish it, or give a new or empty folder",
                field="out",
            )
        # What a write cut short left of the receipts and the report (rewritten at the end).
        for partial in (*out.glob(".*.part"), *out.glob(f"{RECEIPTS_DIR}/.*.part")):
            partial.unlink()
        return records[1:]
    if held:
        more = f" and {len(held) - 1} more" if len(held) > 1 else ""
        raise ValidationError(
            f"{out} already holds {held[0]}{more}: give a new or empty folder "
            "(nothing of an earlier run is overwritten)",
            field="out",
        )
    return []


def read_journal(path: Path) -> list[dict[str, Any]]:
    """A journal's records; a last line cut short by a kill is not one."""
    records: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the journal {path}: {exc}", field="out") from None
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def refuse_overlap(sources: Iterable[Path], out: Path) -> None:
    """ValidationError when `out` lies in a source folder, or a source in `out`: the run would
    read its own scratch and output files as inputs."""
    target = out.resolve()
    for source in sources:
        origin = source.resolve()
        if target.is_relative_to(origin):
            raise ValidationError(f"{out} lies inside the source {source}", field="out")
        if origin.is_relative_to(target):
            raise ValidationError(f"the source {source} lies inside {out}", field="out")
