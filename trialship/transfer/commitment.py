"""Storage Commitment Push: ask the peer to take responsibility, then wait for its report.

The N-ACTION goes on its own association. The N-EVENT-REPORT comes back on a new association
the peer opens to our listening AE (`commitment_port`, the usual way and the only one PS3.4
guarantees), or, without a port, on the same association kept open (SCP role negotiated).
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from trialship.transfer.destination import DicomDestination
from trialship.transfer.errors import TransferError
from trialship.transfer.package import PackageFile
from trialship.transfer.receipt import FileOutcome

INSTANCE_UID = "1.2.840.10008.1.20.1.1"


def _request(transaction: str, files: Sequence[PackageFile]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    items = []
    for item in files:
        assert item.dicom is not None
        ref = Dataset()
        ref.ReferencedSOPClassUID = item.dicom.sop_class_uid
        ref.ReferencedSOPInstanceUID = item.dicom.sop_instance_uid
        items.append(ref)
    ds.ReferencedSOPSequence = items
    return ds


def request_commitment(
    dest: DicomDestination,
    files: Sequence[PackageFile],
    outcomes: dict[str, FileOutcome],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], list[str]]:
    """Commitment for `files`; updates `outcomes` with `committed`; returns (summary, problems)."""
    from trialship.transfer.dimse import associate

    transaction = str(generate_uid())
    reports: queue.Queue[Dataset] = queue.Queue()

    def on_report(event: evt.Event) -> tuple[int, None]:
        info = event.event_information
        if info is not None and info.get("TransactionUID") == transaction:
            reports.put(info)
        return 0x0000, None

    handlers: list[Any] = [(evt.EVT_N_EVENT_REPORT, on_report)]
    server = None
    if dest.commitment_port:
        listener = AE(ae_title=dest.calling_aet)
        listener.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        server = listener.start_server(
            ("", dest.commitment_port), block=False, evt_handlers=handlers
        )
        assoc = associate(dest, [], [StorageCommitmentPushModel])
    else:
        role = build_role(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        assoc = associate(
            dest, [], [StorageCommitmentPushModel], ext_neg=[role], evt_handlers=handlers
        )
    try:
        try:
            status, _ = assoc.send_n_action(
                _request(transaction, files), 1, StorageCommitmentPushModel, INSTANCE_UID
            )
        except ValueError as exc:  # the peer refused the Storage Commitment context
            raise TransferError(f"storage commitment not offered by the peer: {exc}") from None
        code = int(status.Status) if "Status" in status else None
        if code != 0x0000:
            shown = "no answer" if code is None else f"status 0x{code:04X}"
            raise TransferError(f"storage commitment request refused: {shown}")
        if dest.commitment_port:
            assoc.release()
        try:
            report = reports.get(timeout=dest.commitment_timeout)
        except queue.Empty:
            report = None
    finally:
        if assoc.is_established:
            assoc.release()
        if server is not None:
            server.shutdown()
    summary: dict[str, Any] = {
        "transaction_uid": transaction,
        "mode": "new association" if dest.commitment_port else "same association",
    }
    if report is None:
        summary["committed"] = 0
        return summary, [f"storage commitment: no report within {dest.commitment_timeout:g} s"]
    done = {str(r.ReferencedSOPInstanceUID) for r in report.get("ReferencedSOPSequence", [])}
    failed = {
        str(r.ReferencedSOPInstanceUID): f"0x{int(r.get('FailureReason', 0)):04X}"
        for r in report.get("FailedSOPSequence", [])
    }
    by_uid = {f.dicom.sop_instance_uid: f for f in files if f.dicom}
    for uid, item in by_uid.items():
        outcome = outcomes[item.remote]
        detail = {**outcome.detail, "committed": uid in done}
        if uid in failed:
            detail["commitment_failure"] = failed[uid]
        outcomes[item.remote] = dataclasses.replace(outcome, detail=detail)
    missing = [uid for uid in by_uid if uid not in done]
    summary["committed"] = len(by_uid) - len(missing)
    summary["not_committed"] = len(missing)
    problems = [f"storage commitment: {len(missing)} instance(s) not committed"] if missing else []
    return summary, problems
