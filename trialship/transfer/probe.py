"""Test a destination without sending anything: SSH auth and a listing, C-ECHO, a QIDO request.

Each probe answers a `ProbeResult` instead of raising, so that the caller can record the outcome.
An SFTP server whose host key is not pinned yet is not sent any credential: the probe stops after
the key exchange and answers the offered key, for a person to confirm.
"""

from __future__ import annotations

import http.client
import io
import socket
from dataclasses import dataclass

import paramiko
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from trialship.transfer.destination import (
    DicomDestination,
    DicomWebDestination,
    SftpDestination,
)
from trialship.transfer.errors import TransferError
from trialship.transfer.sftp import _check_host_key, _host_label, fingerprint

OK = "ok"
UNPINNED = "unpinned"  # reached, host key shown, nothing trusted yet
FAILED = "failed"


@dataclass(frozen=True)
class HostKey:
    """A server's public host key: type ("ssh-ed25519"), base64 blob, SHA256 fingerprint."""

    type: str
    base64: str
    fingerprint: str

    @classmethod
    def of(cls, key: paramiko.PKey) -> HostKey:
        return cls(key.get_name(), key.get_base64(), fingerprint(key))


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # OK, UNPINNED or FAILED
    message: str
    host_key: HostKey | None = None  # the key the SFTP server offered

    @property
    def ok(self) -> bool:
        return self.outcome == OK


def load_private_key(text: str) -> paramiko.PKey:
    """A private key from its OpenSSH or PEM text; TransferError if unreadable or encrypted."""
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            key: paramiko.PKey = kind.from_private_key(io.StringIO(text))
            return key
        except paramiko.PasswordRequiredException:
            raise TransferError("the private key is protected by a passphrase") from None
        except (paramiko.SSHException, ValueError, IndexError):
            continue
    raise TransferError("not a readable private key (OpenSSH or PEM: ed25519, ECDSA or RSA)")


def _open_transport(dest: SftpDestination, pinned_type: str | None) -> paramiko.Transport:
    where = f"{dest.host}:{dest.port}"
    try:
        sock = socket.create_connection((dest.host, dest.port), timeout=dest.connect_timeout)
    except ConnectionRefusedError:
        raise TransferError(f"connection refused by {where}") from None
    except OSError as exc:
        raise TransferError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    if pinned_type:
        # Ask for the pinned key type first, so a server with several keys shows that one.
        options = transport.get_security_options()
        types = list(options.key_types)
        if pinned_type in types:
            options.key_types = [pinned_type] + [t for t in types if t != pinned_type]
    try:
        transport.start_client(timeout=dest.connect_timeout)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise TransferError(f"SSH negotiation with {where} failed: {exc}") from None
    return transport


def fetch_host_key(host: str, port: int, *, timeout: float = 15.0) -> HostKey:
    """The host key a server offers, without authenticating (and without trusting it)."""
    dest = SftpDestination(host=host, port=port, user="", path="/", connect_timeout=timeout)
    transport = _open_transport(dest, None)
    try:
        return HostKey.of(transport.get_remote_server_key())
    finally:
        transport.close()


def probe_sftp(
    dest: SftpDestination,
    folder: str,
    *,
    private_key: str | None = None,
    pinned_type: str | None = None,
) -> ProbeResult:
    """Check the host key against `dest.host_fingerprint`, log in, and list `folder`.

    With no pinned fingerprint the server is sent nothing: the result is UNPINNED with the key.
    """
    try:
        transport = _open_transport(dest, pinned_type)
    except TransferError as exc:
        return ProbeResult(FAILED, str(exc))
    offered = HostKey.of(transport.get_remote_server_key())
    try:
        if not dest.host_fingerprint:
            return ProbeResult(
                UNPINNED,
                f"{_host_label(dest)} offered the host key {offered.type} {offered.fingerprint}: "
                "a trial admin must confirm this fingerprint (ask the sponsor) before use",
                offered,
            )
        _check_host_key(dest, transport.get_remote_server_key())
        _login(transport, dest, private_key)
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise TransferError(f"no SFTP subsystem on {dest.host}:{dest.port}")
        try:
            names = sftp.listdir(folder)
        except FileNotFoundError:
            raise TransferError(f"remote folder {folder} does not exist") from None
        except PermissionError:
            raise TransferError(f"permission denied: {folder}") from None
        finally:
            sftp.close()
        return ProbeResult(
            OK, f"logged in as {dest.user}; {folder} lists {len(names)} entries", offered
        )
    except TransferError as exc:
        return ProbeResult(FAILED, str(exc), offered)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        return ProbeResult(FAILED, f"SFTP with {dest.host}:{dest.port} failed: {exc}", offered)
    finally:
        transport.close()


def _login(transport: paramiko.Transport, dest: SftpDestination, private_key: str | None) -> None:
    who = f"{dest.user}@{dest.host}:{dest.port}"
    try:
        if private_key:
            transport.auth_publickey(dest.user, load_private_key(private_key))
        elif dest.password is not None:
            transport.auth_password(dest.user, dest.password)
        else:
            raise TransferError(f"no key and no password for {who}")
    except paramiko.AuthenticationException:
        raise TransferError(f"authentication failed for {who}") from None


def echo(dest: DicomDestination) -> ProbeResult:
    """A C-ECHO on a new association (Verification SOP class), over TLS when `dest.tls`."""
    from trialship.transfer.dimse import associate

    try:
        assoc = associate(dest, (), extra_contexts=[Verification])
    except TransferError as exc:
        return ProbeResult(FAILED, str(exc))
    try:
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    where = f"{dest.called_aet}@{dest.host}:{dest.port}"
    if code == 0:
        return ProbeResult(OK, f"C-ECHO to {where} succeeded (as {dest.calling_aet})")
    shown = f"status 0x{code:04X}" if isinstance(code, int) else "no answer"
    return ProbeResult(FAILED, f"C-ECHO to {where} failed: {shown}")


def qido(dest: DicomWebDestination) -> ProbeResult:
    """A QIDO-RS request: GET {base}/studies?limit=1."""
    from trialship.transfer.dicomweb import _connection

    conn, path = _connection(dest)
    headers = {"Accept": "application/dicom+json"}
    if dest.auth_header:
        name, sep, value = dest.auth_header.partition(":")
        if sep and " " not in name:
            headers[name.strip()] = value.strip()
        else:
            headers["Authorization"] = dest.auth_header
    try:
        conn.request("GET", f"{path}?limit=1", headers=headers)
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(FAILED, f"QIDO-RS to {dest.base_url} failed: {exc}")
    finally:
        conn.close()
    if response.status in (200, 204):
        return ProbeResult(OK, f"QIDO-RS to {dest.base_url} answered HTTP {response.status}")
    if response.status in (401, 403):
        return ProbeResult(
            FAILED, f"authentication failed at {dest.base_url} (HTTP {response.status})"
        )
    return ProbeResult(
        FAILED, f"QIDO-RS to {dest.base_url}: HTTP {response.status} {response.reason}"
    )
