"""DICOM C-STORE sender: few associations, files sent as stored, statuses kept.

pynetdicom negotiates and releases each association; the C-STOREs themselves go straight on
its socket (`dimse_wire.Wire`: the file's dataset bytes after the file meta, never decoded),
so each (SOP class, transfer syntax) pair needs its own presentation context: at most 128 per
association, so a package with more pairs uses several associations in turn. Failed
instances and dropped associations are retried with backoff; a rejected association is a
permanent failure carrying the peer's reason. Storage commitment is optional.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.status import code_to_category

from trialship.transfer.destination import DicomDestination
from trialship.transfer.dimse_wire import NotPart10, Opened, Wire, WireError
from trialship.transfer.errors import TransferError
from trialship.transfer.guard import check_package
from trialship.transfer.journal import Journal
from trialship.transfer.package import Package, PackageFile, split_confirmed, with_sha256
from trialship.transfer.receipt import (
    FAILED,
    STORED,
    WARNING,
    Clock,
    FileOutcome,
    TransferReceipt,
    utc_now,
)

Progress = Callable[[int, int], None]
MAX_CONTEXTS = 128
BACKOFF = 0.5  # seconds, doubled on each retry
REACTOR_DELAY = 0.0001  # pynetdicom polls every 1 ms by default: most of a small C-STORE
QUIET_DELAY = 0.005  # the DUL's poll while the wire has the socket (it must not spin)


class _Rejected(TransferError):
    pass


class _Lost(TransferError):
    """The association could not be made or broke: worth another try."""


@dataclass
class _Run:
    destination: DicomDestination
    journal: Journal
    progress: Progress
    outcomes: dict[str, FileOutcome]
    lock: threading.Lock
    bytes_sent: int = 0


def context_groups(files: Sequence[PackageFile]) -> list[list[PackageFile]]:
    """Files split so that each group needs at most MAX_CONTEXTS (SOP class, syntax) pairs."""
    groups: list[list[PackageFile]] = []
    contexts: list[set[tuple[str, str]]] = []
    for item in files:
        assert item.dicom is not None
        pair = (item.dicom.sop_class_uid, item.dicom.transfer_syntax_uid)
        for group, pairs in zip(groups, contexts, strict=True):
            if pair in pairs or len(pairs) < MAX_CONTEXTS:
                group.append(item)
                pairs.add(pair)
                break
        else:
            groups.append([item])
            contexts.append({pair})
    return groups


def _pairs(files: Sequence[PackageFile]) -> list[tuple[str, str]]:
    found = {(f.dicom.sop_class_uid, f.dicom.transfer_syntax_uid) for f in files if f.dicom}
    return sorted(found)


def _rejection(assoc: Association) -> str:
    answer = assoc.acceptor.primitive
    if answer is None:
        return "no reason given"
    return f"{answer.result_str}, source {answer.source_str}: {answer.reason_str}"


def _refused(dest: DicomDestination) -> bool:
    try:
        with socket.create_connection((dest.host, dest.port), timeout=dest.timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def tls_context(dest: DicomDestination) -> ssl.SSLContext:
    """A client context that verifies the peer (its name too) against the given certificate,
    else the system's trusted CAs."""
    return (
        ssl.create_default_context(cadata=dest.tls_ca)
        if dest.tls_ca
        else (ssl.create_default_context())
    )


def _tls_failure(dest: DicomDestination) -> str | None:
    """Why a TLS handshake with the peer fails (pynetdicom only logs it), or None."""
    try:
        raw = socket.create_connection((dest.host, dest.port), timeout=dest.timeout)
        with raw, tls_context(dest).wrap_socket(raw, server_hostname=dest.host):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or exc)
    except ssl.SSLError as exc:
        return str(exc.reason or exc)
    except OSError:
        return None


def associate(
    dest: DicomDestination,
    pairs: Sequence[tuple[str, str]],
    extra_contexts: Sequence[str] = (),
    **options: Any,
) -> Association:
    """An established association proposing one context per pair; raises on failure.

    `options` go to `AE.associate` (evt_handlers, ext_neg).
    """
    ae = AE(ae_title=dest.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = dest.timeout
    for sop_class, syntax in pairs:
        ae.add_requested_context(sop_class, syntax)
    for sop_class in extra_contexts:
        ae.add_requested_context(sop_class)
    if dest.tls:
        options.setdefault("tls_args", (tls_context(dest), dest.host))
    try:
        assoc = ae.associate(
            dest.host, dest.port, ae_title=dest.called_aet, max_pdu=dest.max_pdu, **options
        )
    except ssl.SSLError as exc:
        raise TransferError(
            f"TLS with {dest.host}:{dest.port} failed: {exc.reason or exc}", permanent=True
        ) from None
    where = f"{dest.called_aet}@{dest.host}:{dest.port}"
    if assoc.is_rejected:
        raise _Rejected(f"association rejected by {where}: {_rejection(assoc)}", permanent=True)
    if not assoc.is_established:
        if dest.tls and (why := _tls_failure(dest)):
            raise TransferError(f"TLS with {dest.host}:{dest.port} failed: {why}", permanent=True)
        if _refused(dest):
            raise _Lost(f"connection refused by {dest.host}:{dest.port}")
        raise _Lost(f"association with {where} aborted (no accepted context or peer error)")
    sock = assoc.dul.socket.socket if assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assoc.dul._run_loop_delay = REACTOR_DELAY
    return assoc


class _HeldCheckpoint(threading.Event):
    """Keeps pynetdicom's association reactor paused across many C-STOREs.

    Each `send_c_store` pauses the reactor (which polls every 1 ms) and wakes it afterwards,
    so the next call waits up to 1 ms for it to pause again: most of a small C-STORE's time.
    As a pure SCU we need no reactor between requests, so `set()` is ignored while held.
    """

    held = True

    def set(self) -> None:
        if not self.held:
            super().set()


@contextlib.contextmanager
def _reactor_paused(assoc: Association) -> Iterator[None]:
    held = _HeldCheckpoint()
    original = assoc._reactor_checkpoint
    original.clear()
    while not assoc._is_paused and assoc.is_established:
        time.sleep(0.0001)
    assoc._reactor_checkpoint = held
    assoc._is_paused = False
    original.set()  # the reactor loops once, then waits on `held`
    while not assoc._is_paused and assoc.is_established:
        time.sleep(0.0001)
    try:
        yield
    finally:
        held.held = False
        held.set()


@contextlib.contextmanager
def _wire(assoc: Association, dest: DicomDestination) -> Iterator[Wire]:
    """The association's socket to ourselves: pynetdicom's reactor paused, its DUL thread
    kept from reading the socket (it would take our C-STORE-RSPs), its idle timer restarted
    when we hand the association back."""
    dul = assoc.dul
    polled = threading.Event()

    def no_transport_event() -> bool:
        polled.set()
        return False

    with _reactor_paused(assoc):
        delay = dul._run_loop_delay
        dul._is_transport_event = no_transport_event  # type: ignore[method-assign]
        dul._run_loop_delay = QUIET_DELAY
        sock = dul.socket.socket if dul.socket else None
        previous = sock.gettimeout() if sock is not None else None
        try:
            # once the DUL has called the stub, it is past any read it had begun
            if sock is None or not polled.wait(dest.timeout):
                raise _Lost(f"association with {dest.called_aet} lost before sending")
            sock.settimeout(dest.timeout)
            yield Wire(sock, int(assoc.acceptor.maximum_length or 0))
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(previous)
            del dul._is_transport_event
            dul._run_loop_delay = delay
            dul._idle_timer.restart()


def _store_all(run: _Run, files: Sequence[PackageFile]) -> None:
    """Send `files` on one association, recording each outcome; raises _Lost if it breaks."""
    assoc = associate(run.destination, _pairs(files))
    contexts = {
        (str(cx.abstract_syntax), str(cx.transfer_syntax[0])): int(cx.context_id)
        for cx in assoc.accepted_contexts
        if cx.context_id is not None
    }
    try:
        with _wire(assoc, run.destination) as wire:
            _store_files(run, wire, contexts, files)
    except WireError as exc:
        # the byte stream is no longer trusted: abort, never release
        assoc.abort()
        raise _Lost(f"association with {run.destination.called_aet} lost: {exc}") from None
    finally:
        if assoc.is_established:
            assoc.release()


def _store_files(
    run: _Run, wire: Wire, contexts: dict[tuple[str, str], int], files: Sequence[PackageFile]
) -> None:
    """C-STORE each file in turn; the next one is opened and read while the peer stores one."""
    ahead: dict[int, Opened | Exception] = {}

    def open_ahead(index: int) -> None:
        if index < len(files) and _context(contexts, files[index]) is not None:
            try:
                ahead[index] = wire.open(files[index].path, hash_file=files[index].sha256 is None)
            except (NotPart10, OSError) as exc:
                ahead[index] = exc

    try:
        _store_in_turn(run, wire, contexts, files, ahead, open_ahead)
    finally:
        for leftover in ahead.values():  # the association broke with one read ahead
            if not isinstance(leftover, Exception):
                leftover.fp.close()


def _store_in_turn(
    run: _Run,
    wire: Wire,
    contexts: dict[tuple[str, str], int],
    files: Sequence[PackageFile],
    ahead: dict[int, Opened | Exception],
    open_ahead: Callable[[int], None],
) -> None:
    open_ahead(0)
    for n, item in enumerate(files):
        assert item.dicom is not None
        detail: dict[str, Any] = {"sop_instance_uid": item.dicom.sop_instance_uid}
        context_id = _context(contexts, item)
        if context_id is None:
            pair = (item.dicom.sop_class_uid, item.dicom.transfer_syntax_uid)
            detail["reason"] = f"peer refused SOP class {pair[0]} in syntax {pair[1]}"
            _record(run, _hashed_if_readable(item), FAILED, detail, permanent=True)
            open_ahead(n + 1)
            continue
        opened = ahead.pop(n)
        if isinstance(opened, Exception):  # nothing of it was sent
            detail["reason"] = f"cannot send: {opened}"
            _record(run, _hashed_if_readable(item), FAILED, detail, permanent=True)
            open_ahead(n + 1)
            continue
        answer = wire.store(
            opened, context_id, item.dicom.sop_class_uid, item.dicom.sop_instance_uid,
            n % 0xFFFF + 1, meanwhile=functools.partial(open_ahead, n + 1),
        )  # fmt: skip
        if answer.sha256 is not None:
            item = replace(item, sha256=answer.sha256)
        code = answer.status
        category = code_to_category(code)
        detail["status"] = f"0x{code:04X}"
        if answer.error_comment:
            detail["reason"] = answer.error_comment
        with run.lock:
            run.bytes_sent += item.size
        if category == "Success":
            _record(run, item, STORED, detail)
        elif category == "Warning":
            _record(run, item, WARNING, detail)
        else:
            detail.setdefault("reason", category)
            _record(run, item, FAILED, detail)


def _hashed_if_readable(item: PackageFile) -> PackageFile:
    try:
        return with_sha256(item)
    except OSError:
        return replace(item, sha256="")  # unreadable: failed, and no content to name


def _context(contexts: dict[tuple[str, str], int], item: PackageFile) -> int | None:
    assert item.dicom is not None
    return contexts.get((item.dicom.sop_class_uid, item.dicom.transfer_syntax_uid))


def _record(
    run: _Run, item: PackageFile, state: str, detail: dict[str, Any], *, permanent: bool = False
) -> None:
    if permanent:
        detail["permanent"] = True
    assert item.sha256 is not None
    outcome = FileOutcome(item.remote, item.sha256, item.size, state, dict(detail))
    if outcome.confirmed:
        run.journal.confirm(item.remote, item.sha256, item.size, state=state, **detail)
    with run.lock:
        run.outcomes[item.remote] = outcome
        run.progress(1 if outcome.confirmed else 0, item.size)


def _slices(files: Sequence[PackageFile], count: int) -> Iterator[list[PackageFile]]:
    size = -(-len(files) // count)
    for start in range(0, len(files), size):
        yield list(files[start : start + size])


def _send_group(run: _Run, files: list[PackageFile]) -> None:
    parallel = min(run.destination.associations, len(files))
    if parallel <= 1:
        _store_all(run, files)
        return
    errors: list[BaseException] = []

    def work(part: list[PackageFile]) -> None:
        try:
            _store_all(run, part)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in _slices(files, parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for exc in errors:
        if isinstance(exc, _Rejected):
            raise exc
    if errors:
        raise errors[0]


def _retriable(run: _Run, files: Sequence[PackageFile]) -> list[PackageFile]:
    todo = []
    for item in files:
        outcome = run.outcomes.get(item.remote)
        if outcome is None or (not outcome.confirmed and "permanent" not in outcome.detail):
            todo.append(item)
    return todo


def send_dimse(
    package: Package,
    destination: DicomDestination,
    journal: Journal,
    progress: Progress | None = None,
    *,
    allow_identified: bool = False,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> TransferReceipt:
    """C-STORE every file of `package`; the receipt holds each instance's status."""
    check_package(package, allow_identified=allow_identified)
    started = clock()
    run = _Run(destination, journal, progress or (lambda files, nbytes: None), {}, threading.Lock())
    done, pending = split_confirmed(package.files, journal)
    for item, earlier in done:
        assert item.sha256 is not None
        detail = {k: v for k, v in earlier.items() if k in ("sop_instance_uid", "status")}
        state = earlier.get("state", STORED)
        run.outcomes[item.remote] = FileOutcome(
            item.remote, item.sha256, item.size, state, detail, resumed=True
        )
        run.progress(1, item.size)
    todo: list[PackageFile] = []
    for item in pending:
        if item.dicom is None:
            detail = {"reason": "not a DICOM file", "permanent": True}
            digest = with_sha256(item).sha256
            assert digest is not None
            run.outcomes[item.remote] = FileOutcome(item.remote, digest, item.size, FAILED, detail)
        else:
            todo.append(item)
    last_error: TransferError | None = None
    for attempt in range(destination.retries + 1):
        if attempt:
            sleep(BACKOFF * 2 ** (attempt - 1))
        last_error = None
        try:
            for group in context_groups(todo):
                _send_group(run, group)
        except _Rejected:
            raise
        except _Lost as exc:
            last_error = exc
        todo = _retriable(run, todo)
        if not todo:
            break
    if last_error is not None:
        raise TransferError(str(last_error))
    extra: dict[str, Any] = {}
    problems: list[str] = []
    if destination.commitment:
        from trialship.transfer.commitment import request_commitment

        stored = [f for f in package.files if f.dicom and run.outcomes[f.remote].confirmed]
        extra["commitment"], problems = request_commitment(
            destination, stored, run.outcomes, sleep=sleep
        )
    ordered = tuple(run.outcomes[f.remote] for f in package.files)
    return TransferReceipt(
        kind="dicom",
        destination=destination.describe(),
        started_at=started,
        finished_at=clock(),
        files=ordered,
        bytes_sent=run.bytes_sent,
        extra=extra,
        problems=tuple(problems),
    )
