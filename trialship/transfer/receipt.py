"""The transfer receipt: what was sent where, with hashes and times, signed like every receipt.

The signed document is the envelope of `trialship.deid.receipt.sign_receipt`, so
`trialship receipt verify` checks it (and `--files SRC` checks the sources against the hashes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trialship import __version__
from trialship.deid.receipt import build_receipt, sign_receipt

Clock = Callable[[], dt.datetime]

# Outcome states. "stored" and "warning" count as confirmed; "failed" does not.
STORED = "stored"
WARNING = "warning"
FAILED = "failed"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class FileOutcome:
    remote: str  # the path below the destination folder (or the package path for DICOM)
    sha256: str
    size: int
    state: str  # STORED, WARNING or FAILED
    detail: dict[str, Any] = field(default_factory=dict)  # status code, SOP instance, reason
    resumed: bool = False  # confirmed by an earlier run (journal), not sent this time

    @property
    def confirmed(self) -> bool:
        return self.state in (STORED, WARNING)


@dataclass(frozen=True)
class TransferReceipt:
    kind: str  # "sftp", "dicom", "dicomweb"
    destination: str  # describe(): never a secret
    started_at: dt.datetime
    finished_at: dt.datetime
    files: tuple[FileOutcome, ...]
    bytes_sent: int  # this run
    extra: dict[str, Any] = field(default_factory=dict)  # manifest, marker, commitment
    problems: tuple[str, ...] = ()  # e.g. instances the peer did not commit to keep

    @property
    def complete(self) -> bool:
        return not self.problems and all(f.confirmed for f in self.files)

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if not f.confirmed)

    @property
    def bytes_total(self) -> int:
        return sum(f.size for f in self.files)

    def payload(self) -> dict[str, Any]:
        outcomes = {
            f.remote: {"state": f.state, "size": f.size, "resumed": f.resumed, **f.detail}
            for f in self.files
        }
        return build_receipt(
            kind="submission",
            inputs={f.remote: f.sha256 for f in self.files},
            outputs={f.remote: f.sha256 for f in self.files if f.confirmed},
            profile_name="",
            profile_hash="",
            options=[],
            tool_version=__version__,
            created_at=self.finished_at,
            destination=self.destination,
            extra={
                "transfer": self.kind,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "complete": self.complete,
                "files": len(self.files),
                "bytes_total": self.bytes_total,
                "bytes_sent": self.bytes_sent,
                "outcomes": outcomes,
                "problems": list(self.problems),
                **self.extra,
            },
        )

    def sign(self, private_key: Ed25519PrivateKey) -> dict[str, Any]:
        return sign_receipt(self.payload(), private_key)
