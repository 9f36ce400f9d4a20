"""The journal: a JSON-lines file of what the destination has confirmed, so a re-run resumes.

The first line names the destination; each later line confirms one file (its remote path and
SHA-256). A file is sent again only if it is not confirmed with the same hash. Lines are
written with one `write` and flushed at once (a killed process loses nothing); a background
thread fsyncs them (group commit: one fsync covers every confirmation of the last
GROUP_COMMIT seconds), so the sender does not wait ~2 ms per file for the disk, and the disk
sees ~50 fsyncs a second rather than one per file (measured: ~850 fsyncs for 1,000 C-STOREs,
10% of the send's wall time on this machine). An OS crash can lose at most that window's
confirmations: those files are simply sent again. `close()` waits for the last fsync.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trialship.transfer.errors import TransferError

FORMAT = "trialship-journal/1"
GROUP_COMMIT = 0.02  # seconds of confirmations one fsync covers


def journal_key(sources: Iterable[Path | str], destination: str) -> str:
    """A stable name for (sources, destination): the default journal file's stem."""
    hasher = hashlib.sha256()
    for source in sorted(str(Path(s).resolve()) for s in sources):
        hasher.update(source.encode() + b"\0")
    hasher.update(destination.encode())
    return hasher.hexdigest()[:32]


class Journal:
    """Confirmed files for one destination. Use as a context manager (or call close())."""

    def __init__(self, path: Path, destination: str) -> None:
        self.path = Path(path)
        self.destination = destination
        self._confirmed: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._pending = threading.Event()
        self._stop = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if fresh:
            self._append({"format": FORMAT, "destination": destination})
            os.fsync(self._fd)
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def _load(self) -> None:
        with self.path.open("rb") as fp:
            lines = fp.read().split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            raise TransferError(f"{self.path} is not a trialship journal", permanent=True) from None
        if header.get("format") != FORMAT:
            raise TransferError(f"{self.path} is not a trialship journal", permanent=True)
        if header.get("destination") != self.destination:
            raise TransferError(
                f"{self.path} is the journal of {header.get('destination')}, "
                f"not of {self.destination}",
                permanent=True,
            )
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that file is simply sent again
            if isinstance(entry, dict) and "remote" in entry and "sha256" in entry:
                self._confirmed[entry["remote"]] = entry

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        os.write(self._fd, line)

    def _sync_loop(self) -> None:
        while True:
            self._pending.wait()
            if not self._stop:
                time.sleep(GROUP_COMMIT)  # let the next confirmations join this fsync
            self._pending.clear()
            with contextlib.suppress(OSError):  # closed under us: close() fsyncs last
                os.fsync(self._fd)
            if self._stop:
                return

    def confirmed(self, remote: str, sha256: str) -> dict[str, Any] | None:
        """The confirmation of `remote` with this content, or None."""
        entry = self._confirmed.get(remote)
        return entry if entry is not None and entry["sha256"] == sha256 else None

    def confirm(self, remote: str, sha256: str, size: int, **detail: Any) -> None:
        entry = {"remote": remote, "sha256": sha256, "size": size, **detail}
        with self._lock:
            self._append(entry)
            self._confirmed[remote] = entry
        self._pending.set()

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        return dict(self._confirmed)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._stop = True
        self._pending.set()
        self._syncer.join()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
