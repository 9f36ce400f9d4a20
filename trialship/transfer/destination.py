"""Destinations: where a package goes, parsed from a URL; `describe()` never shows a secret.

sftp://user@host:port/absolute/dir[?marker=NAME&fingerprint=SHA256:...]
dicom://AET@host:port[?calling_aet=AET&max_pdu=0&commitment=1&commitment_port=N&associations=N
                     &tls=1&tls_ca=PATH]
dicomweb+http(s)://host:port/path
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from trialship.errors import ValidationError

DEFAULT_CALLING_AET = "TRIALSHIP"


@dataclass(frozen=True)
class SftpDestination:
    host: str
    port: int
    user: str
    path: str  # absolute remote folder
    known_hosts: Path | None = None
    host_fingerprint: str | None = None  # "SHA256:<base64>" as ssh-keygen -l prints it
    identity: Path | None = None
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # OpenSSH PEM text, not a path
    marker: str | None = None  # written after SHA256SUMS, e.g. "COMPLETE"
    connect_timeout: float = 15.0

    kind = "sftp"

    def describe(self) -> str:
        # a relative folder is below the login's home, as sftp(1) takes it
        folder = self.path if self.path.startswith("/") else f"/~/{self.path}"
        return f"sftp://{self.user}@{self.host}:{self.port}{folder}"


@dataclass(frozen=True)
class DicomDestination:
    host: str
    port: int
    called_aet: str
    calling_aet: str = DEFAULT_CALLING_AET
    max_pdu: int = 0  # 0 = unlimited
    commitment: bool = False
    commitment_port: int | None = None  # our listening AE for the N-EVENT-REPORT
    commitment_timeout: float = 60.0
    associations: int = 1  # parallel associations
    tls: bool = False
    tls_ca: str | None = None  # PEM the peer's certificate must chain to; None: system CAs
    retries: int = 3
    timeout: float = 30.0

    kind = "dicom"

    def describe(self) -> str:
        return f"dicom://{self.called_aet}@{self.host}:{self.port}"


@dataclass(frozen=True)
class DicomWebDestination:
    base_url: str  # http(s)://host:port/path, without the dicomweb+ prefix
    auth_header: str | None = field(default=None, repr=False)  # e.g. "Bearer abc"
    batch_files: int = 50
    batch_bytes: int = 64 << 20
    timeout: float = 60.0

    kind = "dicomweb"

    def describe(self) -> str:
        return f"dicomweb+{self.base_url}"


Destination = SftpDestination | DicomDestination | DicomWebDestination


def _query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _flag(value: str) -> bool:
    return value.lower() in {"1", "yes", "true", "on"}


def _read_ca(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"cannot read the TLS certificate {path}: {exc}", field="to"
        ) from None


def _int(options: dict[str, str], name: str, default: int | None) -> int | None:
    if name not in options:
        return default
    try:
        return int(options[name])
    except ValueError:
        raise ValidationError(f"{name} must be a number, not {options[name]!r}") from None


def parse_destination(url: str, **overrides: Any) -> Destination:
    """The destination of `url`; keyword overrides (identity, password, ...) win over the URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = _query(parts.query)
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"bad port in {url!r}", field="to") from None
    host = parts.hostname or ""
    if not host:
        raise ValidationError(f"no host in {url!r}", field="to")
    destination: Destination
    if scheme == "sftp":
        path = unquote(parts.path) or "/"
        if not parts.username:
            raise ValidationError("sftp URL needs a user: sftp://user@host:port/dir", field="to")
        if not path.startswith("/"):
            raise ValidationError("sftp path must be absolute", field="to")
        destination = SftpDestination(
            host=host,
            port=port or 22,
            user=unquote(parts.username),
            path=path.rstrip("/") or "/",
            # base64 has no spaces: a "+" turned into one by query decoding comes back
            host_fingerprint=options.get("fingerprint", "").replace(" ", "+") or None,
            marker=options.get("marker") or None,
        )
    elif scheme == "dicom":
        if not parts.username:
            raise ValidationError("dicom URL needs the called AE title: dicom://AET@host:port")
        called = unquote(parts.username)
        calling = options.get("calling_aet", DEFAULT_CALLING_AET)
        for title in (called, calling):
            if not 0 < len(title) <= 16:
                raise ValidationError(f"AE title {title!r} must be 1 to 16 characters")
        destination = DicomDestination(
            host=host,
            port=port or 104,
            called_aet=called,
            calling_aet=calling,
            max_pdu=_int(options, "max_pdu", 0) or 0,
            commitment=_flag(options.get("commitment", "0")),
            commitment_port=_int(options, "commitment_port", None),
            associations=max(1, _int(options, "associations", 1) or 1),
            tls=_flag(options.get("tls", "0")),
            tls_ca=_read_ca(options["tls_ca"]) if options.get("tls_ca") else None,
            retries=max(0, _int(options, "retries", 3) or 0),
            timeout=float(_int(options, "timeout", 30) or 30),
        )
    elif scheme in {"dicomweb+http", "dicomweb+https"}:
        inner = scheme.removeprefix("dicomweb+")
        netloc = f"{host}:{port}" if port else host
        if ":" in host:
            netloc = f"[{host}]:{port}" if port else f"[{host}]"
        destination = DicomWebDestination(base_url=f"{inner}://{netloc}{parts.path.rstrip('/')}")
    else:
        raise ValidationError(
            f"unknown destination {url!r}: use sftp://, dicom:// or dicomweb+http(s)://",
            field="to",
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return replace(destination, **given)
    except TypeError as exc:
        raise ValidationError(f"option not valid for {scheme}: {exc}") from None
