"""SFTP to a real OpenSSH sshd: a tree, resume after SIGKILL, host keys, auth, permissions, disk."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.integration.transfer.peers import Sshd
from tests.integration.transfer.samples import ct_file, ct_tree
from trialship.transfer import Journal, TransferError, build_package, parse_destination, send


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _args(sshd: Sshd, remote: Path, *extra: str) -> list[str]:
    return [
        "--to", sshd.url(remote), "--identity", str(sshd.client_key),
        "--known-hosts", str(sshd.known_hosts), "--no-progress", *extra,
    ]  # fmt: skip


def test_a_tree_arrives_with_manifest_marker_and_a_verifiable_receipt(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = tmp_path / "src"
    ct_tree(src, 12, size=30_000, per_series=5)
    remote = tmp_path / "remote" / "TRIAL" / "SITE"
    receipt = tmp_path / "receipt.json"
    url = sshd.url(remote) + "?marker=COMPLETE"
    result = cli("send", str(src), *_args(sshd, remote)[2:], "--to", url, "--receipt", str(receipt))
    assert result.exit_code == 0, result.output
    for local in src.rglob("*.dcm"):
        assert _digest(remote / local.relative_to(src)) == _digest(local)
    assert not list(remote.rglob("*.part"))
    sums = (remote / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 12 and (remote / "COMPLETE").exists()
    # hashed from the bytes read to send them (`trialship send` builds the package unhashed)
    assert sorted(sums) == sorted(
        f"{_digest(local)}  {local.relative_to(src).as_posix()}" for local in src.rglob("*.dcm")
    )
    document = json.loads(receipt.read_text())
    assert document["payload"]["kind"] == "submission"
    assert document["payload"]["destination"] == f"sftp://root@127.0.0.1:{sshd.port}{remote}"
    assert document["payload"]["extra"]["complete"] is True
    checked = cli("receipt", "verify", str(receipt), "--files", str(src))
    assert checked.exit_code == 0, checked.output

    again = cli("send", str(src), *_args(sshd, remote)[2:], "--to", url)
    assert again.exit_code == 0 and "(12 from an earlier run)" in again.output


def test_a_sender_killed_mid_file_resumes_from_the_part_without_resending(
    sshd: Sshd, tmp_path: Path, data_dir: Path
) -> None:
    src = tmp_path / "src"
    small = ct_tree(src / "a", 3, size=20_000)
    big = ct_file(src / "z" / "big.dcm", size=400_000_000)
    remote = tmp_path / "remote"
    command = [
        sys.executable, "-c",
        "import sys, trialship.cli.transfer; from trialship.cli import main; main()",
        "--data", str(data_dir), "send", str(src), *_args(sshd, remote),
    ]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    part = remote / "z" / "big.dcm.part"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 20_000_000):
        assert first.poll() is None, first.stdout.read() if first.stdout else ""
        assert time.monotonic() < deadline, "the .part never grew"
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    offset = part.stat().st_size
    assert 0 < offset < big.stat().st_size and not (remote / "z" / "big.dcm").exists()

    second = subprocess.run(command, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "(3 from an earlier run)" in second.stdout
    assert _digest(remote / "z" / "big.dcm") == _digest(big)
    for path in small:
        assert _digest(remote / path.relative_to(src)) == _digest(path)
    journal = next((data_dir / "journals").glob("*.jsonl")).read_text().splitlines()[1:]
    confirmed = [json.loads(line)["remote"] for line in journal]
    assert sorted(confirmed) == sorted(set(confirmed)) and len(confirmed) == 4
    receipt = json.loads(next((data_dir / "receipts").glob("*.json")).read_text())
    # only the rest of the big file (and the manifest) went over the wire the second time
    assert receipt["payload"]["extra"]["bytes_sent"] < big.stat().st_size - offset + 10_000


def test_an_unknown_host_key_is_refused_showing_the_offered_fingerprint(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = ct_file(tmp_path / "one.dcm")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = _args(sshd, tmp_path / "remote")
    args[args.index("--known-hosts") + 1] = str(empty)
    result = cli("send", str(src), *args)
    assert result.exit_code != 0
    assert "unknown host key" in result.output and sshd.fingerprint in result.output
    assert not (tmp_path / "remote").exists()


def test_a_changed_host_key_is_refused_showing_both_fingerprints(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = ct_file(tmp_path / "one.dcm")
    other = " ".join(sshd.other_key.with_suffix(".pub").read_text().split()[:2])
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    args = _args(sshd, tmp_path / "remote")
    args[args.index("--known-hosts") + 1] = str(pinned)
    result = cli("send", str(src), *args)
    assert result.exit_code != 0
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: host key mismatch")
    assert sshd.fingerprint in line
    import paramiko

    from trialship.transfer.sftp import fingerprint

    assert fingerprint(paramiko.Ed25519Key.from_private_key_file(str(sshd.other_key))) in line

    # an expected fingerprint given in the URL is checked the same way
    destination = parse_destination(
        sshd.url(tmp_path / "r2") + "?fingerprint=SHA256:AAAA", identity=sshd.client_key
    )
    with (
        Journal(tmp_path / "j.jsonl", destination.describe()) as journal,
        pytest.raises(TransferError, match="expected SHA256:AAAA, offered ssh-ed25519"),
    ):
        send(build_package([src]), destination, journal)
    good = parse_destination(
        sshd.url(tmp_path / "r2") + f"?fingerprint={sshd.fingerprint}", identity=sshd.client_key
    )
    with Journal(tmp_path / "j2.jsonl", good.describe()) as journal:
        assert send(build_package([src]), good, journal).complete


def test_a_wrong_client_key_is_refused(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = ct_file(tmp_path / "one.dcm")
    args = _args(sshd, tmp_path / "remote")
    args[args.index("--identity") + 1] = str(sshd.other_key)
    result = cli("send", str(src), *args)
    assert result.exit_code != 0
    assert f"Error: authentication failed for root@127.0.0.1:{sshd.port}" in result.output


def test_nothing_listening_is_connection_refused(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = ct_file(tmp_path / "one.dcm")
    sshd.stop()
    result = cli("send", str(src), *_args(sshd, tmp_path / "remote"))
    assert result.exit_code != 0
    assert f"Error: connection refused by 127.0.0.1:{sshd.port}" in result.output


def test_a_remote_folder_without_write_permission_is_permission_denied(
    sshd: Sshd, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    src = ct_file(tmp_path / "one.dcm")
    locked = tmp_path / "locked"
    locked.mkdir()
    # root ignores modes; an immutable folder refuses even root (EPERM -> permission denied)
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        result = cli("send", str(src), *_args(sshd, locked))
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert result.exit_code != 0
    assert f"Error: permission denied: {locked}/one.dcm.part" in result.output


def test_a_full_remote_disk_is_reported_as_such(tmp_path: Path, cli: Callable[..., Result]) -> None:
    target = tmp_path / "small-disk"
    server = Sshd(tmp_path / "sshd", tmpfs={target: "256k"}).start()
    try:
        src = ct_file(tmp_path / "one.dcm", size=2_000_000)
        result = cli("send", str(src), *_args(server, target))
    finally:
        server.stop()
    assert result.exit_code != 0
    assert f"Error: remote disk full (write failed: {target}/one.dcm.part)" in result.output


def test_without_posix_rename_an_older_copy_is_replaced_by_remove_then_rename(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trialship.transfer import sftp

    original = sftp._SFTPClient._send_version

    def without_posix_rename(self: sftp._SFTPClient) -> int:
        version = original(self)
        self.extensions.pop("posix-rename@openssh.com", None)
        return version

    monkeypatch.setattr(sftp._SFTPClient, "_send_version", without_posix_rename)
    src = tmp_path / "src"
    ct_tree(src, 5, size=30_000, per_series=2)
    remote = tmp_path / "remote"
    for path in src.rglob("*.dcm"):  # an older copy of every file is already there
        older = remote / path.relative_to(src)
        older.parent.mkdir(parents=True, exist_ok=True)
        older.write_bytes(b"older")
    destination = parse_destination(
        sshd.url(remote), identity=sshd.client_key, known_hosts=sshd.known_hosts
    )
    with Journal(tmp_path / "j.jsonl", destination.describe()) as journal:
        receipt = send(build_package([src], hashed=False), destination, journal)
    assert receipt.complete
    for local in src.rglob("*.dcm"):
        assert _digest(remote / local.relative_to(src)) == _digest(local)
    assert not list(remote.rglob("*.part"))
