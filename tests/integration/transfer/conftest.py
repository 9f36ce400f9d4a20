"""Fixtures of the transfer tests (the peers themselves are in tests/integration/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import trialship.cli.transfer  # noqa: F401  (registers `send` on the group)
from tests.integration.transfer.peers import NetNamespace
from trialship.cli import main


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
