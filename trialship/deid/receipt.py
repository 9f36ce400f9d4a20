"""Receipts: a canonical JSON payload saying what went in and out, signed with Ed25519.

Pure: the time, the hashes and the key come in as parameters. Canonical JSON (sorted keys, no
spaces, UTF-8) makes the signed bytes the same wherever the receipt is rebuilt.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

RECEIPT_VERSION = 1
ALGORITHM = "Ed25519"


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_receipt(
    *,
    kind: str,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    profile_name: str,
    profile_hash: str,
    options: Iterable[str],
    tool_version: str,
    created_at: dt.datetime | str,
    changed_attributes: Mapping[str, int] | None = None,
    destination: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The receipt payload.

    Parameters
    ----------
    kind
        "deidentification" or "submission".
    inputs, outputs
        File name (or instance key) -> SHA-256 hex digest.
    changed_attributes
        Counts per report action (DeidReport.counts()); never values.
    created_at
        The time, given by the caller (the engine has no clock).
    """
    when = created_at.isoformat() if isinstance(created_at, dt.datetime) else str(created_at)
    payload: dict[str, Any] = {
        "version": RECEIPT_VERSION,
        "kind": kind,
        "created_at": when,
        "tool": {"name": "trialship", "version": tool_version},
        "profile": {"name": profile_name, "hash": profile_hash},
        "options": sorted(options),
        "inputs": dict(sorted(inputs.items())),
        "outputs": dict(sorted(outputs.items())),
    }
    if changed_attributes is not None:
        payload["changed_attributes"] = dict(sorted(changed_attributes.items()))
    if destination is not None:
        payload["destination"] = destination
    if extra:
        payload["extra"] = dict(extra)
    return payload


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_receipt(payload: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed document: payload, signature over its canonical JSON, and the public key."""
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "payload": dict(payload),
        "signature": {
            "algorithm": ALGORITHM,
            "public_key": _b64(public),
            "value": _b64(private_key.sign(canonical_json(payload))),
        },
    }


def verify_receipt(document: Mapping[str, Any], public_key: Ed25519PublicKey) -> bool:
    """True when the document was signed by `public_key` and not changed since.

    The embedded public key is informational only: trust comes from the key the caller passes.
    """
    try:
        signature = document["signature"]
        if signature.get("algorithm") != ALGORITHM:
            return False
        public_key.verify(base64.b64decode(signature["value"]), canonical_json(document["payload"]))
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True
