"""Receipts are canonical JSON signed with Ed25519; any change breaks the signature."""

from __future__ import annotations

import copy
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trialship.deid.receipt import build_receipt, canonical_json, sign_receipt, verify_receipt


def _payload() -> dict:  # type: ignore[type-arg]
    return build_receipt(
        kind="deidentification",
        inputs={"in/1.dcm": "a" * 64},
        outputs={"out/1.dcm": "b" * 64},
        profile_name="acme",
        profile_hash="c" * 64,
        options=["retain_uids", "clean_descriptors"],
        tool_version="0.1.0",
        created_at="2024-05-01T10:00:00+00:00",
        changed_attributes={"removed": 3},
    )


def test_signed_receipt_verifies_and_survives_json_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    document = json.loads(json.dumps(sign_receipt(_payload(), key)))
    assert verify_receipt(document, key.public_key())
    assert document["payload"]["options"] == ["clean_descriptors", "retain_uids"]


def test_tampered_receipt_or_wrong_key_fails() -> None:
    key = Ed25519PrivateKey.generate()
    document = sign_receipt(_payload(), key)
    tampered = copy.deepcopy(document)
    tampered["payload"]["outputs"]["out/1.dcm"] = "d" * 64
    assert not verify_receipt(tampered, key.public_key())
    assert not verify_receipt(document, Ed25519PrivateKey.generate().public_key())
    assert not verify_receipt({"payload": {}}, key.public_key())


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
