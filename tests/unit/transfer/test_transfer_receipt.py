"""The transfer receipt: content, signature in the shared envelope, completeness."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trialship.deid.receipt import verify_receipt
from trialship.transfer import FileOutcome, TransferReceipt

START = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(seconds=42)


def _receipt(*outcomes: FileOutcome, problems: tuple[str, ...] = ()) -> TransferReceipt:
    return TransferReceipt(
        kind="dicom", destination="dicom://PACS@h:104", started_at=START, finished_at=END,
        files=outcomes, bytes_sent=300, problems=problems,
    )  # fmt: skip


STORED = FileOutcome("a.dcm", "aa" * 32, 100, "stored", {"status": "0x0000"})
WARNED = FileOutcome("b.dcm", "bb" * 32, 200, "warning", {"status": "0xB000"}, resumed=True)
FAILED = FileOutcome("c.dcm", "cc" * 32, 50, "failed", {"status": "0xA700", "reason": "Out"})


def test_the_payload_lists_hashes_statuses_bytes_and_times() -> None:
    payload = _receipt(STORED, WARNED, FAILED).payload()
    assert payload["kind"] == "submission"
    assert payload["destination"] == "dicom://PACS@h:104"
    assert payload["created_at"] == END.isoformat()
    assert payload["inputs"] == {"a.dcm": "aa" * 32, "b.dcm": "bb" * 32, "c.dcm": "cc" * 32}
    assert payload["outputs"] == {"a.dcm": "aa" * 32, "b.dcm": "bb" * 32}  # confirmed only
    extra = payload["extra"]
    assert extra["started_at"] == START.isoformat() and extra["finished_at"] == END.isoformat()
    assert extra["bytes_total"] == 350 and extra["bytes_sent"] == 300
    assert extra["complete"] is False
    assert extra["outcomes"]["b.dcm"] == {
        "state": "warning", "size": 200, "resumed": True, "status": "0xB000"
    }  # fmt: skip
    assert extra["outcomes"]["c.dcm"]["reason"] == "Out"


def test_complete_needs_every_file_confirmed_and_no_problem() -> None:
    assert _receipt(STORED, WARNED).complete
    assert not _receipt(STORED, FAILED).complete
    assert not _receipt(STORED, problems=("storage commitment: 1 not committed",)).complete


def test_the_signed_receipt_verifies_with_the_instance_key_and_not_after_a_change() -> None:
    key = Ed25519PrivateKey.generate()
    document = _receipt(STORED, WARNED).sign(key)
    assert verify_receipt(document, key.public_key())
    document["payload"]["destination"] = "dicom://OTHER@h:104"
    assert not verify_receipt(document, key.public_key())
    assert not verify_receipt(_receipt(STORED).sign(key), Ed25519PrivateKey.generate().public_key())
