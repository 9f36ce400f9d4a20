"""SFTP sender (paramiko): pinned host key, `.part` uploads that resume, SHA256SUMS last.

One connection for the whole package. The remote folders are made (and, when they were
there already, listed for `.part` files) first; then every file goes through the pipeline
(`sftp_pipeline`): to `name.part` with writes as large as the server allows
(limits@openssh.com), its remote size checked, then renamed (posix-rename@openssh.com when
offered), several files in flight at once. A re-run skips files the journal confirms and
appends to a `.part` from its remote size. Files of a package built without hashes are
hashed from the bytes read to send them; SHA256SUMS is written last from those hashes.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import posixpath
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

import paramiko
from paramiko.sftp import CMD_EXTENDED_REPLY, CMD_INIT, CMD_VERSION, SFTPError

from trialship.transfer.destination import SftpDestination
from trialship.transfer.errors import TransferError
from trialship.transfer.guard import check_package
from trialship.transfer.journal import Journal
from trialship.transfer.package import MANIFEST_NAME, Package, PackageFile, split_confirmed
from trialship.transfer.receipt import STORED, Clock, FileOutcome, TransferReceipt, utc_now
from trialship.transfer.sftp_pipeline import Pipeline, Upload

Progress = Callable[[int, int], None]  # (files confirmed, bytes sent) increments

WINDOW = 64 << 20
READ_BLOCK = 4 << 20
DEFAULT_REQUEST = 32768
MAX_REQUEST = 256 << 10
_SFTP_VERSION = 3
# AES-GCM first: one AEAD pass instead of AES-CTR plus a separate HMAC (measured in the bench).
CIPHERS: tuple[str, ...] = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)


def fingerprint(key: paramiko.PKey) -> str:
    """The SHA256 fingerprint as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _SFTPClient(paramiko.SFTPClient):  # type: ignore[misc]
    """SFTPClient that keeps the extensions the server announces (paramiko drops them)."""

    extensions: dict[str, bytes]

    def _send_version(self) -> int:
        msg = paramiko.Message()
        msg.add_int(_SFTP_VERSION)
        self._send_packet(CMD_INIT, msg)
        kind, data = self._read_packet()
        if kind != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        version: int = struct.unpack(">I", data[:4])[0]
        self.extensions = {}
        reply = paramiko.Message(data[4:])
        while reply.get_remainder():
            name = reply.get_string().decode("utf-8", "replace")
            self.extensions[name] = reply.get_string()
        return version

    def max_write(self) -> int:
        """The largest write request the server accepts (limits@openssh.com), capped."""
        if "limits@openssh.com" not in self.extensions:
            return DEFAULT_REQUEST
        kind, msg = self._request(paramiko.sftp.CMD_EXTENDED, "limits@openssh.com")
        if kind != CMD_EXTENDED_REPLY:
            return DEFAULT_REQUEST
        msg.get_int64()  # max packet length
        msg.get_int64()  # max read length
        max_write = msg.get_int64()
        return min(MAX_REQUEST, max_write) if max_write else DEFAULT_REQUEST


def _host_label(dest: SftpDestination) -> str:
    return dest.host if dest.port == 22 else f"[{dest.host}]:{dest.port}"


def _pinned(dest: SftpDestination) -> dict[str, paramiko.PKey]:
    if dest.known_hosts is None:
        return {}
    try:
        keys = paramiko.HostKeys(str(dest.known_hosts))
    except OSError as exc:
        raise TransferError(f"cannot read known_hosts {dest.known_hosts}: {exc}") from None
    found = keys.lookup(_host_label(dest))
    return dict(found) if found else {}


def _check_host_key(dest: SftpDestination, offered: paramiko.PKey) -> None:
    label = _host_label(dest)
    offered_print = f"{offered.get_name()} {fingerprint(offered)}"
    expected: list[str] = []
    if dest.host_fingerprint:
        want = dest.host_fingerprint
        want = want if want.startswith("SHA256:") else f"SHA256:{want}"
        if want.rstrip("=") == fingerprint(offered):
            return
        expected.append(want)
    pinned = _pinned(dest)
    for key in pinned.values():
        if key.get_name() == offered.get_name() and key.asbytes() == offered.asbytes():
            return
        expected.append(f"{key.get_name()} {fingerprint(key)}")
    if not expected:
        where = f"in {dest.known_hosts}" if dest.known_hosts else "(no known_hosts, no fingerprint)"
        raise TransferError(
            f"unknown host key for {label}: expected none pinned {where}, offered {offered_print}",
            permanent=True,
        )
    raise TransferError(
        f"host key mismatch for {label}: expected {', '.join(expected)}, offered {offered_print}",
        permanent=True,
    )


def _auth(transport: paramiko.Transport, dest: SftpDestination) -> None:
    who = f"{dest.user}@{dest.host}:{dest.port}"
    try:
        if dest.identity is not None:
            try:
                key = paramiko.PKey.from_path(dest.identity, password=dest.password)
            except (OSError, paramiko.SSHException) as exc:
                raise TransferError(
                    f"cannot read the key {dest.identity}: {exc}", permanent=True
                ) from None
            transport.auth_publickey(dest.user, key)
        elif dest.private_key is not None:
            from trialship.transfer.probe import load_private_key

            transport.auth_publickey(dest.user, load_private_key(dest.private_key))
        elif dest.password is not None:
            transport.auth_password(dest.user, dest.password)
        else:
            raise TransferError(f"no key and no password for {who}", permanent=True)
    except paramiko.AuthenticationException:
        raise TransferError(f"authentication failed for {who}", permanent=True) from None


def connect(dest: SftpDestination) -> tuple[paramiko.Transport, _SFTPClient]:
    """An authenticated SFTP session after the host key check, on our own TCP_NODELAY socket."""
    where = f"{dest.host}:{dest.port}"
    try:
        sock = socket.create_connection((dest.host, dest.port), timeout=dest.connect_timeout)
    except ConnectionRefusedError:
        raise TransferError(f"connection refused by {where}") from None
    except OSError as exc:
        raise TransferError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, default_window_size=WINDOW)
    try:
        pinned = _pinned(dest)
        options = transport.get_security_options()
        options.ciphers = [c for c in CIPHERS if c in options.ciphers] + [
            c for c in options.ciphers if c not in CIPHERS
        ]
        if pinned and not dest.host_fingerprint:
            # Ask for the key type we hold, so a server with several keys shows the pinned one.
            known = [t for t in options.key_types if t in pinned] or list(options.key_types)
            options.key_types = known
        transport.start_client(timeout=dest.connect_timeout)
        _check_host_key(dest, transport.get_remote_server_key())
        _auth(transport, dest)
        sftp = _SFTPClient.from_transport(transport, window_size=WINDOW)
        if sftp is None:
            raise TransferError(f"no SFTP subsystem on {where}")
        return transport, sftp
    except paramiko.SSHException as exc:
        transport.close()
        raise TransferError(f"SSH negotiation with {where} failed: {exc}") from None
    except BaseException:
        transport.close()
        raise


def _remote_error(exc: OSError, path: str, *, writing: bool) -> TransferError:
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return TransferError(f"permission denied: {path}", permanent=True)
    if writing and (exc.errno is None and "Failure" in str(exc)):
        # OpenSSH maps ENOSPC (and EDQUOT) to the generic SSH_FX_FAILURE status.
        return TransferError(f"remote disk full (write failed: {path})", permanent=True)
    return TransferError(f"remote error on {path}: {exc.strerror or exc}")


class _Folders:
    """Remote folders made before the upload; the `.part` files of those already there.

    One listing per folder that receives files, instead of a stat per file (a folder of
    many earlier files costs its listing: ~30 us an entry)."""

    def __init__(self, sftp: _SFTPClient) -> None:
        self.sftp = sftp
        self.known: set[str] = set()
        self.made: set[str] = set()
        self.parts: dict[str, int] = {}  # remote .part path -> its size

    def ensure(self, path: str) -> None:
        if path in self.known or path in ("", "/"):
            return
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            self.ensure(posixpath.dirname(path))
            try:
                self.sftp.mkdir(path)
            except OSError as exc:
                raise _remote_error(exc, path, writing=False) from None
            self.made.add(path)
        except OSError as exc:
            raise _remote_error(exc, path, writing=False) from None
        self.known.add(path)

    def prepare(self, folders: Iterable[str]) -> None:
        for folder in sorted(set(folders)):
            self.ensure(folder)
            if folder in self.made:
                continue  # new and empty
            try:
                for entry in self.sftp.listdir_attr(folder):
                    if entry.filename.endswith(".part") and entry.st_size is not None:
                        self.parts[posixpath.join(folder, entry.filename)] = int(entry.st_size)
            except OSError as exc:
                raise _remote_error(exc, folder, writing=False) from None

    def offset(self, target: str, size: int) -> int:
        existing = self.parts.get(f"{target}.part")
        return existing if existing is not None and existing <= size else 0


def send_sftp(
    package: Package,
    destination: SftpDestination,
    journal: Journal,
    progress: Progress | None = None,
    *,
    allow_identified: bool = False,
    clock: Clock = utc_now,
) -> TransferReceipt:
    """Upload `package` below `destination.path`; the receipt lists every remote path."""
    check_package(package, allow_identified=allow_identified)
    report: Progress = progress or (lambda files, nbytes: None)
    started = clock()
    outcomes: dict[str, FileOutcome] = {}
    done, todo = split_confirmed(package.files, journal)
    for item, _ in done:
        assert item.sha256 is not None
        target = _remote(destination, item.remote)
        outcomes[item.remote] = FileOutcome(
            item.remote, item.sha256, item.size, STORED, {"path": target}, True
        )
        report(0, item.size)
        report(1, 0)
    transport, sftp = connect(destination)
    try:
        folders = _Folders(sftp)
        targets = {item.remote: _remote(destination, item.remote) for item in todo}
        folders.ensure(destination.path)  # for SHA256SUMS, even when every file is resumed
        folders.prepare(posixpath.dirname(t) for t in targets.values())
        pipeline = Pipeline(
            sftp, sftp.max_write(), "posix-rename@openssh.com" in sftp.extensions, report
        )

        def confirmer(item: PackageFile) -> Callable[[Upload], None]:
            def confirm(up: Upload) -> None:
                digest = item.sha256 or up.sha256
                assert digest is not None
                journal.confirm(item.remote, digest, item.size, path=up.target)
                outcomes[item.remote] = FileOutcome(
                    item.remote, digest, item.size, STORED, {"path": up.target}
                )
                report(1, 0)

            return confirm

        pipeline.run(
            [
                Upload(
                    targets[item.remote],
                    item.size,
                    folders.offset(targets[item.remote], item.size),
                    path=item.path,
                    hash_file=item.sha256 is None,
                    done=confirmer(item),
                )
                for item in todo
            ]
        )
        manifest = package.manifest({o.remote: o.sha256 for o in outcomes.values()})
        last = [Upload(_remote(destination, MANIFEST_NAME), len(manifest), 0, data=manifest)]
        extra: dict[str, Any] = {"manifest": MANIFEST_NAME}
        if destination.marker:
            last.append(Upload(_remote(destination, destination.marker), 0, 0, data=b""))
            extra["marker"] = destination.marker
        for up in last:  # the manifest once every file is in place, the marker after it
            pipeline.run([up])
    except (EOFError, paramiko.SSHException, ConnectionError, TimeoutError) as exc:
        raise TransferError(f"connection to {destination.host} lost: {exc}") from None
    finally:
        sftp.close()
        transport.close()
    return TransferReceipt(
        kind="sftp",
        destination=destination.describe(),
        started_at=started,
        finished_at=clock(),
        files=tuple(outcomes[f.remote] for f in package.files),
        bytes_sent=pipeline.bytes_sent,
        extra=extra,
    )


def _remote(destination: SftpDestination, relative: str) -> str:
    return posixpath.join(destination.path, relative)
