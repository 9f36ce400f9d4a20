"""Real peers for the transfer tests and the benchmark: sshd, storescp, Orthanc.

Each runs on loopback: sshd in a private mount namespace (for /run/sshd and tmpfs targets),
storescp and Orthanc in a private network namespace (neither can bind to 127.0.0.1 alone),
reached from a thread that joins that namespace (`NetNamespace.call`). Every process is
stopped by its PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paramiko

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SSHD = "/usr/sbin/sshd"
STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


class PeerMissing(RuntimeError):
    """A peer program is not installed or did not start (tests turn this into a failure)."""


def require(*programs: str) -> None:
    missing = [p for p in programs if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        raise PeerMissing(
            f"missing test peers {', '.join(missing)}: install the Debian packages "
            "openssh-server, dcmtk, orthanc and orthanc-dicomweb"
        )


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 of the calling thread's network namespace
    (held together while chosen, so no two are the same)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def wait_for(
    check: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 10.0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerMissing(f"{what} exited ({process.returncode}): {_tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise PeerMissing(f"{what} not ready after {timeout:g} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-800:].strip()
    except OSError:
        return "(no output)"


def stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _connects(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


# ---------------------------------------------------------------- sshd


class Sshd:
    """OpenSSH sshd on 127.0.0.1:port, root login by key, internal-sftp.

    `tmpfs` maps a folder to a tmpfs size (e.g. {"/x/full": "256k"}) mounted inside sshd's own
    mount namespace, so the host never sees it.
    """

    def __init__(self, folder: Path, *, tmpfs: dict[Path, str] | None = None) -> None:
        require(SSHD, "unshare", "ssh-keygen")
        self.folder = folder
        self.tmpfs = tmpfs or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        keys = folder / "ssh"
        keys.mkdir(parents=True, exist_ok=True)
        self.host_key = keys / "host_ed25519"
        self.client_key = keys / "client_ed25519"
        self.other_key = keys / "other_ed25519"
        for key in (self.host_key, self.client_key, self.other_key):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
                )
        (keys / "authorized_keys").write_bytes(self.client_key.with_suffix(".pub").read_bytes())
        os.chmod(keys / "authorized_keys", 0o600)
        self.known_hosts = keys / "known_hosts"
        public = " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public}\n")
        self.config = keys / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {keys / 'sshd.pid'}",
                    f"AuthorizedKeysFile {keys / 'authorized_keys'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "AllowUsers root",
                    "Subsystem sftp internal-sftp",
                    "StrictModes no",
                    "MaxStartups 100",
                    "",
                ]
            )
        )
        self.log = folder / "sshd.out"

    @property
    def fingerprint(self) -> str:
        key = paramiko.Ed25519Key.from_private_key_file(str(self.host_key))
        from trialship.transfer.sftp import fingerprint

        return fingerprint(key)

    def start(self) -> Sshd:
        mounts = "".join(
            f"mkdir -p {path} && mount -t tmpfs -o size={size},mode=755 tmpfs {path} && "
            for path, size in self.tmpfs.items()
        )
        script = (
            "mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/sshd && "
            f"{mounts}exec {SSHD} -D -e -f {self.config}"
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: _connects("127.0.0.1", self.port), "sshd", self.process, self.log)
        return self

    def stop(self) -> None:
        stop(self.process)

    def url(self, path: Path | str) -> str:
        return f"sftp://root@127.0.0.1:{self.port}{path}"


# ---------------------------------------------------------------- network namespace


_libc = ctypes.CDLL(None, use_errno=True)


class NetNamespace:
    """A private network namespace with loopback up, held open by a sleeping process."""

    def __init__(self) -> None:
        require("unshare", "nsenter", "ip")
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep infinity"],
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["nsenter", "-t", str(self.holder.pid), "-n", "ip", "-o", "link", "show", "lo"],
                capture_output=True,
                text=True,
            )
            if "LOOPBACK,UP" in probe.stdout:
                return
            time.sleep(0.02)
        raise PeerMissing("network namespace: loopback did not come up")

    @property
    def pid(self) -> int:
        return self.holder.pid

    def command(self, *args: str) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", *args]

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run func in a thread inside the namespace (threads it starts inherit it)."""
        result: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            try:
                result.append(func(*args, **kwargs))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]  # type: ignore[no-any-return]

    def connects(self, port: int) -> bool:
        return self.call(_connects, "127.0.0.1", port)

    def free_ports(self, count: int = 1) -> list[int]:
        """Ports free inside the namespace. A port free on the host may be taken in here: a
        storescp given Orthanc's port failed to listen, and the test reached Orthanc instead
        ("Called AE title not recognised")."""
        return self.call(free_ports, count)

    def close(self) -> None:
        stop(self.holder, signal.SIGKILL)


# ---------------------------------------------------------------- storescp


class Storescp:
    """dcmtk storescp in the namespace, with TCP_NODELAY (dcmtk leaves Nagle on otherwise)."""

    def __init__(
        self,
        ns: NetNamespace,
        folder: Path,
        *,
        aet: str = "STORESCP",
        tls: tuple[Path, Path] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        require(STORESCP)
        self.extra = extra  # more storescp options, e.g. a slow peer
        self.ns = ns
        self.aet = aet
        self.tls = tls  # (private key, certificate) PEM files: TLS only, no client certificate
        self.folder = folder
        (self.port,) = ns.free_ports()
        self.received = folder / "received"
        self.received.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"storescp-{self.port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Storescp:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.ns.command(
                    "env",
                    "TCP_NODELAY=1",
                    STORESCP,
                    "-aet",
                    self.aet,
                    "-od",
                    str(self.received),
                    "-fe",
                    ".dcm",
                    "+xa",
                    "--max-pdu",
                    "131072",
                    *(("+tls", str(self.tls[0]), str(self.tls[1]), "-ic") if self.tls else ()),
                    *self.extra,
                    str(self.port),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.ns.connects(self.port), "storescp", self.process, self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop(self.process, sig)

    def url(self) -> str:
        return f"dicom://{self.aet}@127.0.0.1:{self.port}"


# ---------------------------------------------------------------- Orthanc


class Orthanc:
    """Orthanc with the DICOMweb plugin in the namespace; checks the called AE title; knows
    TRIALSHIP at `commitment_port` so it can send storage commitment reports back."""

    def __init__(self, ns: NetNamespace, folder: Path) -> None:
        require(ORTHANC, DICOMWEB_PLUGIN)
        self.ns = ns
        self.folder = folder
        self.dicom_port, self.http_port, self.commitment_port = ns.free_ports(3)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "TRIALSHIP-TEST",
            "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"),
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAet": "ORTHANC",
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "DicomModalities": {
                "trialship": ["TRIALSHIP", "127.0.0.1", self.commitment_port],
            },
            "WebDavEnabled": False,
            "StableAge": 2,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config, indent=1))
        self.log = folder / "orthanc.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Orthanc:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.ns.command(ORTHANC, str(self.config)), stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(lambda: self.rest("/system") is not None, "Orthanc", self.process, self.log, 20)
        return self

    def stop(self) -> None:
        stop(self.process)

    def rest(self, path: str, method: str = "GET", data: bytes | None = None) -> Any:
        url = f"http://127.0.0.1:{self.http_port}{path}"

        def fetch() -> Any:
            request = urllib.request.Request(url, data=data, method=method)
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = answer.read()
            return json.loads(body) if body else {}

        return self.ns.call(fetch)

    def instance_uids(self) -> set[str]:
        found = self.rest(
            "/tools/find",
            "POST",
            json.dumps({"Level": "Instance", "Query": {}, "Expand": True}).encode(),
        )
        return {item["MainDicomTags"]["SOPInstanceUID"] for item in found}

    def clear(self) -> None:
        for patient in self.rest("/patients"):
            self.rest(f"/patients/{patient}", "DELETE")

    def dicom_url(self, aet: str = "ORTHANC") -> str:
        return f"dicom://{aet}@127.0.0.1:{self.dicom_port}"

    def dicomweb_url(self) -> str:
        return f"dicomweb+http://127.0.0.1:{self.http_port}/dicom-web"


# ---------------------------------------------------------------- TLS


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for localhost / 127.0.0.1 (PEM files in folder)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "server.key", folder / "server.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
