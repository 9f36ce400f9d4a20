"""DICOMweb STOW-RS sender: multipart/related batches streamed from disk, per-instance results.

Uses the standard library's http.client. Each batch's body is streamed file by file with a
known Content-Length; the response's ReferencedSOPSequence / FailedSOPSequence say what the
server kept. Network errors and 5xx answers are retried with backoff; 401/403 are permanent.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trialship.transfer.destination import DicomWebDestination
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
BLOCK = 1 << 20
RETRIES = 3
BACKOFF = 0.5

# DICOM JSON tags of the STOW-RS response (PS3.18 Table 10.5.3-1)
FAILED_SEQUENCE = "00081198"
REFERENCED_SEQUENCE = "00081199"
INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"


def batches(
    files: Sequence[PackageFile], max_files: int, max_bytes: int
) -> list[list[PackageFile]]:
    """Consecutive batches of at most `max_files` files and `max_bytes` (a bigger file alone)."""
    out: list[list[PackageFile]] = []
    current: list[PackageFile] = []
    size = 0
    for item in files:
        if current and (len(current) >= max_files or size + item.size > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        out.append(current)
    return out


class _Body:
    """A multipart/related body read from disk as it is sent."""

    def __init__(self, files: Sequence[PackageFile], progress: Progress) -> None:
        self.boundary = f"trialship-{uuid.uuid4().hex}"
        self.files = files
        self.progress = progress
        self.head = f"--{self.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="application/dicom"; boundary={self.boundary}'

    def __len__(self) -> int:
        joins = len(self.files) - 1
        return (
            sum(f.size for f in self.files)
            + len(self.head) * len(self.files)
            + joins * 2
            + len(self.tail)
        )

    def __iter__(self) -> Iterator[bytes]:
        for n, item in enumerate(self.files):
            yield (b"\r\n" if n else b"") + self.head
            with Path(item.path).open("rb") as fp:
                while chunk := fp.read(BLOCK):
                    yield chunk
                    self.progress(0, len(chunk))
        yield self.tail


def _connection(dest: DicomWebDestination) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(dest.base_url)
    path = (parts.path.rstrip("/") or "") + "/studies"
    if parts.scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(
            parts.netloc, timeout=dest.timeout, context=context
        ), path
    return http.client.HTTPConnection(parts.netloc, timeout=dest.timeout), path


def _headers(dest: DicomWebDestination, body: _Body) -> dict[str, str]:
    headers = {
        "Content-Type": body.content_type,
        "Content-Length": str(len(body)),
        "Accept": "application/dicom+json",
    }
    if dest.auth_header:
        name, sep, value = dest.auth_header.partition(":")
        if sep and " " not in name:
            headers[name.strip()] = value.strip()
        else:
            headers["Authorization"] = dest.auth_header
    return headers


def _post(dest: DicomWebDestination, files: Sequence[PackageFile], progress: Progress) -> Any:
    body = _Body(files, progress)
    conn, path = _connection(dest)
    try:
        conn.request("POST", path, body=iter(body), headers=_headers(dest, body))
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise TransferError(f"STOW-RS to {dest.base_url} failed: {exc}") from None
    finally:
        conn.close()
    if response.status in (401, 403):
        raise TransferError(
            f"authentication failed at {dest.base_url} (HTTP {response.status})", permanent=True
        )
    if response.status >= 500:
        raise TransferError(f"STOW-RS to {dest.base_url}: HTTP {response.status} {response.reason}")
    if response.status not in (200, 202, 409):
        raise TransferError(
            f"STOW-RS to {dest.base_url}: HTTP {response.status} {response.reason}", permanent=True
        )
    try:
        return json.loads(data) if data else {}
    except ValueError:
        raise TransferError(f"STOW-RS to {dest.base_url}: the answer is not JSON") from None


def _values(document: Any, tag: str) -> list[dict[str, Any]]:
    if isinstance(document, list):
        document = document[0] if document else {}
    found = document.get(tag, {}).get("Value", []) if isinstance(document, dict) else []
    return [v for v in found if isinstance(v, dict)]


def _first(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value", [])
    return values[0] if values else None


def outcomes_from_response(
    files: Sequence[PackageFile], document: Any
) -> list[tuple[PackageFile, str, dict[str, Any]]]:
    """(file, state, detail) for each file, from a STOW-RS response document."""
    stored = {str(_first(v, INSTANCE_UID)): v for v in _values(document, REFERENCED_SEQUENCE)}
    failed = {str(_first(v, INSTANCE_UID)): v for v in _values(document, FAILED_SEQUENCE)}
    result = []
    for item in files:
        assert item.dicom is not None
        uid = item.dicom.sop_instance_uid
        detail: dict[str, Any] = {"sop_instance_uid": uid}
        if uid in stored:
            warning = _first(stored[uid], WARNING_REASON)
            if warning is not None:
                detail["status"] = f"0x{int(warning):04X}"
            result.append((item, WARNING if warning is not None else STORED, detail))
        else:
            reason = _first(failed[uid], FAILURE_REASON) if uid in failed else None
            detail["reason"] = f"0x{int(reason):04X}" if reason is not None else "not in the answer"
            result.append((item, FAILED, detail))
    return result


def send_dicomweb(
    package: Package,
    destination: DicomWebDestination,
    journal: Journal,
    progress: Progress | None = None,
    *,
    allow_identified: bool = False,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> TransferReceipt:
    """STOW-RS every file of `package` in batches; the receipt holds each instance's result."""
    check_package(package, allow_identified=allow_identified)
    report: Progress = progress or (lambda files, nbytes: None)
    started = clock()
    outcomes: dict[str, FileOutcome] = {}
    todo = []
    done, pending = split_confirmed(package.files, journal)
    for item, earlier in done:
        assert item.sha256 is not None
        detail = {k: v for k, v in earlier.items() if k in ("sop_instance_uid", "status")}
        outcomes[item.remote] = FileOutcome(
            item.remote, item.sha256, item.size, earlier.get("state", STORED), detail, True
        )
        report(1, item.size)
    for item in pending:
        item = with_sha256(item)  # STOW-RS streams the bodies: hash first, it is not timed
        assert item.sha256 is not None
        if item.dicom is None:
            outcomes[item.remote] = FileOutcome(
                item.remote, item.sha256, item.size, FAILED, {"reason": "not a DICOM file"}
            )
        else:
            todo.append(item)
    sent = 0
    for batch in batches(todo, destination.batch_files, destination.batch_bytes):
        for attempt in range(RETRIES + 1):
            try:
                document = _post(destination, batch, report)
                break
            except TransferError as exc:
                if exc.permanent or attempt == RETRIES:
                    raise
                sleep(BACKOFF * 2**attempt)
        sent += sum(f.size for f in batch)
        for item, state, detail in outcomes_from_response(batch, document):
            assert item.sha256 is not None
            outcome = FileOutcome(item.remote, item.sha256, item.size, state, detail)
            if outcome.confirmed:
                journal.confirm(item.remote, item.sha256, item.size, state=state, **detail)
                report(1, 0)
            outcomes[item.remote] = outcome
    return TransferReceipt(
        kind="dicomweb",
        destination=destination.describe(),
        started_at=started,
        finished_at=clock(),
        files=tuple(outcomes[f.remote] for f in package.files),
        bytes_sent=sent,
    )
