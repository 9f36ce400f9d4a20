"""Fixtures of the transfer tests: real sshd, storescp and Orthanc, started and stopped here.

A missing peer is a failure, never a skip. Orthanc is session-scoped (it takes 4 s to stop).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from peers import NetNamespace, Orthanc, PeerMissing, Sshd, Storescp

import trialship.cli.transfer  # noqa: F401  (registers `send` on the group)
from trialship.cli import main


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
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def cli(data_dir: Path) -> Callable[..., Result]:
    """Run `trialship --data DATA ...` in this process (in the namespace with ns=...)."""

    def run(*args: str, ns: NetNamespace | None = None) -> Result:
        def invoke() -> Result:
            return CliRunner().invoke(main, ["--data", str(data_dir), *args])

        return ns.call(invoke) if ns is not None else invoke()

    return run
