"""Real test peers shared by the integration tests: sshd, storescp and Orthanc.

Started here and stopped by PID. A missing peer is a failure, never a skip. Orthanc is
session-scoped (it takes 4 s to stop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.transfer.peers import (
    NetNamespace,
    Orthanc,
    PeerMissing,
    Sshd,
    Storescp,
    self_signed_certificate,
)


def _started(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except PeerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = _started(lambda: Sshd(tmp_path / "sshd").start())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def netns() -> Iterator[NetNamespace]:
    ns = _started(NetNamespace)
    yield ns
    ns.close()


@pytest.fixture(scope="session")
def orthanc(netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = _started(lambda: Orthanc(netns, tmp_path_factory.mktemp("orthanc")).start())
    yield server
    server.stop()


@pytest.fixture
def storescp(netns: NetNamespace, tmp_path: Path) -> Iterator[Storescp]:
    server = _started(lambda: Storescp(netns, tmp_path / "storescp").start())
    yield server
    server.stop()


@pytest.fixture
def tls_storescp(netns: NetNamespace, tmp_path: Path) -> Iterator[tuple[Storescp, Path]]:
    """storescp accepting TLS only, and the certificate to trust."""
    key, cert = self_signed_certificate(tmp_path)
    server = _started(lambda: Storescp(netns, tmp_path / "storescp", tls=(key, cert)).start())
    yield server, cert
    server.stop()
