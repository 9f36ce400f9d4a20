"""C-STORE over TLS to dcmtk storescp (+tls): the peer's certificate is verified against the
one the destination trusts; an untrusted certificate or a plain connection is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.transfer.peers import NetNamespace, Storescp
from tests.integration.transfer.samples import ct_tree
from trialship.transfer import Journal, TransferError, build_package, parse_destination, send


def test_c_store_over_tls_trusting_the_peers_certificate(
    netns: NetNamespace, tls_storescp: tuple[Storescp, Path], tmp_path: Path
) -> None:
    server, cert = tls_storescp
    ct_tree(tmp_path / "src", 5)
    package = build_package([tmp_path / "src"])
    url = f"{server.url()}?tls=1&tls_ca={cert}"
    destination = parse_destination(url)
    with Journal(tmp_path / "j.jsonl", destination.describe()) as journal:
        receipt = netns.call(send, package, destination, journal)
    assert receipt.complete and {f.detail["status"] for f in receipt.files} == {"0x0000"}
    assert len(list(server.received.rglob("*.dcm"))) == 5


def test_an_untrusted_certificate_and_a_plain_connection_are_refused(
    netns: NetNamespace, tls_storescp: tuple[Storescp, Path], tmp_path: Path
) -> None:
    server, _ = tls_storescp
    ct_tree(tmp_path / "src", 2)
    package = build_package([tmp_path / "src"])
    untrusted = parse_destination(f"{server.url()}?tls=1", retries=0)
    refused = pytest.raises(TransferError, match=r"TLS with 127\.0\.0\.1:\d+ failed: self-signed")
    with Journal(tmp_path / "a.jsonl", untrusted.describe()) as journal, refused as failure:
        netns.call(send, package, untrusted, journal)
    assert failure.value.permanent
    plain = parse_destination(server.url(), retries=0, timeout=5.0)
    with Journal(tmp_path / "b.jsonl", plain.describe()) as journal, pytest.raises(TransferError):
        netns.call(send, package, plain, journal)
    assert not list(server.received.rglob("*.dcm"))
