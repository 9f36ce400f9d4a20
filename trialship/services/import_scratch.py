"""The scratch folders of imports (zip entries are extracted there): one a run, named for its
owner, so that what a killed run left (SIGKILL, a power cut) can be told from a running one's.

A folder is named ``<host>-<boot>-<pid>-<start>-<random>``: a hash of the host name (and PID
namespace), this boot of the host, the process and when it started (a PID used again later is
another process). A folder of this host whose process is gone (or is another, or of an earlier
boot) is nobody's and is removed. One whose owner cannot be told here (another host or
container sharing the data folder, a name from before owners were named) is removed only when
nothing in it changed for `STALE_AFTER`: a run touches its folder with each zip entry it
extracts. A running import's folder on this host is never removed, however old.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STALE_AFTER = 7 * 24 * 3600.0
"""Seconds without a change after which a folder whose owner cannot be told is removed."""

_UNKNOWN = "0"


@cache
def _host() -> str:
    """This host, and the PID namespace its PIDs are of: two containers sharing the data folder
    (even under one host name) cannot see each other's processes, and are other hosts here."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    place = f"{socket.gethostname()}\n{namespace}"
    return hashlib.sha256(place.encode("utf-8", "replace")).hexdigest()[:12]


@cache
def _boot() -> str:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return _UNKNOWN
    return boot_id.replace("-", "")[:12] or _UNKNOWN


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, as /proc says); "0" where there is
    no /proc; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else (_UNKNOWN if _alive(pid) else None)
    except OSError:
        return _UNKNOWN if _alive(pid) else None
    # (the command name, in parentheses, may hold spaces and parentheses itself)
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[:1] in ([b"Z"], [b"X"]):  # (killed, and not yet reaped by its parent)
        return None
    return fields[19].decode("ascii") if len(fields) > 19 else _UNKNOWN


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's process)
        return True
    return True


def owned_name() -> str:
    """The name of a new scratch folder of a run in this process."""
    pid = os.getpid()
    return f"{_host()}-{_boot()}-{pid}-{_started(pid) or _UNKNOWN}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class _Owner:
    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def of(cls, name: str) -> _Owner | None:
        parts = name.split("-")
        if len(parts) != 5 or not parts[2].isdigit() or int(parts[2]) < 1:
            return None
        return cls(host=parts[0], boot=parts[1], pid=int(parts[2]), start=parts[3])


def _owner_running(owner: _Owner) -> bool | None:
    """Whether the folder's process still runs: None when that cannot be told here."""
    if owner.host != _host():
        return None
    if owner.boot != _boot() and _UNKNOWN not in (owner.boot, _boot()):
        return False  # (every process of an earlier boot is gone)
    started = _started(owner.pid)
    if started is None:
        return False
    return _UNKNOWN in (started, owner.start) or started == owner.start


def _last_change(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for entry in os.scandir(folder):
        try:
            times.append(entry.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:  # (its run removed it meanwhile)
            continue
    return max(times)


def remove_stale(parent: Path, *, now: float, keep: str = "") -> int:
    """Remove the scratch folders under `parent` that belong to no running import (see the
    module's docstring), all but `keep`; returns how many. `now` is compared with file times."""
    try:
        entries = list(os.scandir(parent))
    except OSError:  # (none yet; or unreadable, which the run's own writes will tell)
        return 0
    removed = 0
    for entry in entries:
        if entry.name == keep or not entry.is_dir(follow_symlinks=False):
            continue
        owner = _Owner.of(entry.name)
        running = _owner_running(owner) if owner is not None else None
        if running:
            continue
        try:
            if running is None and now - _last_change(Path(entry.path)) < STALE_AFTER:
                continue
        except OSError:
            continue  # (removed meanwhile, or unreadable: kept, as it cannot be judged)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += not os.path.lexists(entry.path)
    return removed


def remove_stale_partials(folder: Path, *, now: float) -> int:
    """Remove the half-written files killed imports left under `folder` (a trial's originals
    or exams): hidden ``.part`` files not changed for `STALE_AFTER`. A run writes a partial
    and renames or removes it within the file's own import, so one that old is nobody's; the
    scratch folders are `remove_stale`'s. Returns how many."""
    removed = 0
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]  # (scratch)
        for name in names:
            if not (name.startswith(".") and name.endswith(".part")):
                continue
            path = os.path.join(root, name)
            try:
                if now - os.stat(path, follow_symlinks=False).st_mtime < STALE_AFTER:
                    continue
                os.unlink(path)
            except FileNotFoundError:  # (its run renamed or removed it meanwhile)
                continue
            removed += 1
    return removed
