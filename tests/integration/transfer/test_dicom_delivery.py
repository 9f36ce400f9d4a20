"""C-STORE to dcmtk storescp and Orthanc, storage commitment, STOW-RS, and the guard."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, evt

from tests.integration.transfer.peers import NetNamespace, Orthanc, Storescp
from tests.integration.transfer.samples import bundled_files, ct_tree
from trialship.dicom_header import dataset_offset
from trialship.transfer import Journal, build_package, parse_destination, send
from trialship.transfer.dimse import send_dimse


def _uids(paths: list[Path]) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


class _Verbatim:
    """The namespace, starting storescp with +B: files written exactly as received."""

    def __init__(self, ns: NetNamespace) -> None:
        self._ns = ns

    def command(self, *args: str) -> list[str]:
        return self._ns.command(*args[:-1], "+B", args[-1])  # +B before the port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ns, name)


def _datasets(files: list[bytes]) -> dict[str, bytes]:
    """SOP instance UID -> the dataset's bytes after the file meta (as sent on the wire)."""
    found = {}
    for data in files:
        offset = dataset_offset(data)
        assert offset is not None
        uid = dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
        found[str(uid)] = data[offset:]
    return found


def test_mixed_sop_classes_and_compressed_syntaxes_reach_storescp_and_orthanc(
    netns: NetNamespace, orthanc: Orthanc, tmp_path: Path
) -> None:
    files = bundled_files(tmp_path / "mixed")
    package = build_package([tmp_path / "mixed"], hashed=False)
    storescp = Storescp(_Verbatim(netns), tmp_path / "storescp").start()  # type: ignore[arg-type]
    try:
        for n, url in enumerate((storescp.url(), orthanc.dicom_url())):
            destination = parse_destination(url)
            with Journal(tmp_path / f"{n}.jsonl", destination.describe()) as journal:
                receipt = netns.call(send, package, destination, journal)
            assert receipt.complete, receipt.failed
            assert {f.detail["status"] for f in receipt.files} == {"0x0000"}
    finally:
        storescp.stop()
    received = list(storescp.received.rglob("*.dcm"))
    assert _uids(received) == _uids(files)
    assert _uids(files) <= orthanc.instance_uids()
    # byte for byte as stored: never decoded, compressed pixel data untouched
    sent = _datasets([p.read_bytes() for p in files])
    assert _datasets([p.read_bytes() for p in received]) == sent

    def fetch(path: str) -> bytes:
        url = f"http://127.0.0.1:{orthanc.http_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return bytes(answer.read())

    # Orthanc normalises some values and lengths as it stores, but keeps the pixels as sent
    for path in files:
        source = dcmread(path)
        found = orthanc.rest("/tools/lookup", "POST", str(source.SOPInstanceUID).encode())
        kept = dcmread(io.BytesIO(netns.call(fetch, f"/instances/{found[0]['ID']}/file")))
        assert kept.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        assert kept.PixelData == source.PixelData, path.name


def test_each_instance_keeps_its_status_and_a_failed_one_is_retried(tmp_path: Path) -> None:
    files = bundled_files(tmp_path / "mixed")
    uids = [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]
    warned, flaky, refused = uids[1], uids[2], uids[3]
    calls: dict[str, int] = {}
    received: dict[str, bytes] = {}

    def on_store(event: evt.Event) -> Dataset:
        uid = str(event.request.AffectedSOPInstanceUID)
        calls[uid] = calls.get(uid, 0) + 1
        received[uid] = event.request.DataSet.getvalue()
        answer = Dataset()
        answer.Status = 0x0000
        if uid == warned:
            answer.Status = 0xB000
        elif uid == refused or (uid == flaky and calls[uid] == 1):
            answer.Status, answer.ErrorComment = 0xA700, "Out of resources"
        return answer

    ae = AE(ae_title="SCP")
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        ae.add_supported_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    port = server.server_address[1]
    try:
        destination = parse_destination(f"dicom://SCP@127.0.0.1:{port}?retries=1")
        with Journal(tmp_path / "j.jsonl", destination.describe()) as journal:
            receipt = send_dimse(
                build_package([tmp_path / "mixed"], hashed=False), destination, journal,
                sleep=lambda seconds: None,
            )  # fmt: skip
            entries = journal.entries
    finally:
        server.shutdown()
    by_uid = {f.detail["sop_instance_uid"]: f for f in receipt.files}
    assert (by_uid[warned].state, by_uid[warned].detail["status"]) == ("warning", "0xB000")
    assert (by_uid[flaky].state, by_uid[flaky].detail["status"]) == ("stored", "0x0000")
    assert by_uid[refused].state == "failed"
    assert by_uid[refused].detail["status"] == "0xA700"
    assert by_uid[refused].detail["reason"] == "Out of resources"
    assert calls[flaky] == calls[refused] == 2 and calls[warned] == 1
    assert not receipt.complete and len(receipt.failed) == 1
    # hashed while sent: the receipt and the journal carry each file's SHA-256
    for outcome in receipt.files:
        local = tmp_path / "mixed" / outcome.remote
        assert outcome.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert {e["sha256"] for e in entries.values()} <= {f.sha256 for f in receipt.files}
    assert received == _datasets([p.read_bytes() for p in files])


def test_a_wrong_called_ae_title_is_rejected_with_the_reason(
    netns: NetNamespace, orthanc: Orthanc, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    bundled_files(tmp_path / "mixed")
    result = cli("send", str(tmp_path / "mixed"), "--to", orthanc.dicom_url("NOT-ORTHANC"),
                 "--no-progress", ns=netns)  # fmt: skip
    assert result.exit_code != 0
    assert result.output.strip().endswith(
        f"Error: association rejected by NOT-ORTHANC@127.0.0.1:{orthanc.dicom_port}: "
        "Rejected Permanent, source Service User: Called AE title not recognised"
    )


def _complete_uids(paths: list[Path]) -> set[str]:
    """The instances storescp wrote whole (a kill can leave the one in flight cut short)."""
    found = set()
    for path in paths:
        try:
            found.add(str(dcmread(path, stop_before_pixels=True).SOPInstanceUID))
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
    return found


def test_a_peer_killed_mid_transfer_is_resumed_without_duplicates(
    netns: NetNamespace, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    paths = ct_tree(tmp_path / "src", 300, size=200_000)
    url_of = lambda server: server.url() + "?retries=0&timeout=5"  # noqa: E731
    # A peer that takes ~10 ms per instance, so that the kill lands mid-transfer however fast
    # the sender is.
    slow = Storescp(netns, tmp_path / "slow", extra=("-xcr", "sleep 0.01", "-xs")).start()

    def kill_after_some() -> None:
        # 41 files begun: the peer writes one at a time, so 40 of them are whole (the last may
        # be cut short by the kill).
        while len(list(slow.received.rglob("*.dcm"))) < 41:
            time.sleep(0.005)
        slow.stop(signal.SIGKILL)

    killer = threading.Thread(target=kill_after_some)
    killer.start()
    first = cli("send", str(tmp_path / "src"), "--to", url_of(slow), "--no-progress", ns=netns)
    killer.join()
    assert first.exit_code != 0 and "Error: " in first.output, first.output
    landed = _complete_uids(list(slow.received.rglob("*.dcm")))
    assert 40 <= len(landed) < 300

    before = {p: p.stat().st_mtime_ns for p in slow.received.rglob("*.dcm")}
    slow.extra = ()  # the same peer, at full speed now
    slow.start()  # same port, same folder
    try:
        second = cli("send", str(tmp_path / "src"), "--to", url_of(slow), "--no-progress", ns=netns)
    finally:
        slow.stop()
    assert second.exit_code == 0, second.output
    assert _complete_uids(list(slow.received.rglob("*.dcm"))) == _uids(paths)
    resumed = int(second.output.split(" from an earlier run")[0].rsplit("(", 1)[1])
    assert resumed >= len(landed) - 1  # at most the in-flight instance goes again
    rewritten = [p for p, m in before.items() if p.stat().st_mtime_ns != m]
    assert len(rewritten) <= 2  # the one in flight, and one cut short by the kill


def test_storage_commitment_with_orthanc_reports_every_instance_committed(
    netns: NetNamespace, orthanc: Orthanc, tmp_path: Path
) -> None:
    files = bundled_files(tmp_path / "mixed")
    destination = parse_destination(
        orthanc.dicom_url() + f"?commitment=1&commitment_port={orthanc.commitment_port}"
    )
    with Journal(tmp_path / "j.jsonl", destination.describe()) as journal:
        receipt = netns.call(send, build_package([tmp_path / "mixed"]), destination, journal)
    assert receipt.complete, receipt.problems
    assert receipt.extra["commitment"]["committed"] == len(files)
    assert receipt.extra["commitment"]["mode"] == "new association"
    assert all(f.detail["committed"] for f in receipt.files)


def test_stow_rs_to_orthanc_stores_every_instance(
    netns: NetNamespace, orthanc: Orthanc, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    files = bundled_files(tmp_path / "mixed") + ct_tree(tmp_path / "mixed" / "ct", 7)
    receipt_path = tmp_path / "receipt.json"
    url = orthanc.dicomweb_url()
    result = cli("send", str(tmp_path / "mixed"), "--to", url, "--no-progress",
                 "--receipt", str(receipt_path), ns=netns)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _uids(files) <= orthanc.instance_uids()
    payload = json.loads(receipt_path.read_text())["payload"]
    outcomes = payload["extra"]["outcomes"]
    assert len(outcomes) == len(files)
    assert {o["state"] for o in outcomes.values()} == {"stored"}
    assert {o["sop_instance_uid"] for o in outcomes.values()} == _uids(files)


def test_identified_files_are_refused_and_named_unless_explicitly_allowed(
    netns: NetNamespace, storescp: Storescp, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    bundled_files(tmp_path / "src")
    bundled_files(tmp_path / "src" / "raw", identified=True)
    (tmp_path / "src" / "notes.txt").write_text("not DICOM")
    result = cli("send", str(tmp_path / "src"), "--to", storescp.url(), "--no-progress",
                 ns=netns)  # fmt: skip
    assert result.exit_code != 0
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: refused 7 file(s) not marked de-identified: notes.txt: not a")
    assert "raw/CT_small.dcm: PatientIdentityRemoved is missing" in line
    assert not list(storescp.received.rglob("*.dcm"))

    (tmp_path / "src" / "notes.txt").unlink()
    allowed = cli("send", str(tmp_path / "src"), "--to", storescp.url(), "--no-progress",
                  "--allow-identified", ns=netns)  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert len(list(storescp.received.rglob("*.dcm"))) == 12
