"""Real peers for "test connection": the transfer tests' sshd, storescp and Orthanc, imported.

A missing peer is a failure, never a skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.integration.transfer.peers import NetNamespace, Sshd
from trialship.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `trialship --data DATA ...` on an initialised data folder."""
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    data = tmp_path / "data"

    def run(*args: str, ns: NetNamespace | None = None) -> Result:
        def invoke() -> Result:
            return CliRunner().invoke(main, ["--data", str(data), *args])

        return ns.call(invoke) if ns is not None else invoke()

    started = run("init", "--admin-email", "admin@example.org")
    assert started.exit_code == 0, started.output
    return run


def authorize(server: Sshd, public_key: str) -> None:
    """Let `public_key` log in as root on `server`."""
    (server.folder / "ssh" / "authorized_keys").write_text(public_key + "\n")


def new_host_key(server: Sshd) -> None:
    """Restart `server` on the same port with a freshly generated host key."""
    import subprocess

    server.stop()
    for path in (server.host_key, server.host_key.with_suffix(".pub")):
        path.unlink()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(server.host_key)], check=True
    )
    server.start()
