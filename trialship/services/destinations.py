"""Destinations of a trial: where exams go (SFTP, DICOM, DICOMweb), and "test connection".

Trial admins manage them, members read them; only an admin may let a destination receive
identified data. Secrets are encrypted with the vault, never returned, never audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship import vr
from trialship.crypto import Vault
from trialship.errors import Conflict, Forbidden, NotFound, ValidationError
from trialship.registry.delivery import DEFAULT_REMOTE_PATH, Destination, DestinationKind
from trialship.registry.models import Trial, utcnow
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.fields import Spec, apply, get_in_trial, validate
from trialship.transfer.destination import (
    DEFAULT_CALLING_AET,
    DicomDestination,
    DicomWebDestination,
    SftpDestination,
)
from trialship.transfer.errors import TransferError
from trialship.transfer.probe import FAILED, OK, UNPINNED, ProbeResult, load_private_key

KINDS = [k.value for k in DestinationKind]
AUTHS = ["key", "password"]
PACKAGE_FORMS = ["tree", "zip", "iso"]
PLACEHOLDERS = ("protocol_id", "site_id", "subject_id", "timepoint_id")
SECRETS = ("private_key", "password", "auth_header")
DEFAULT_PORTS = {DestinationKind.SFTP: 22, DestinationKind.DICOM: 104}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,255}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


def _name(value: object) -> str:
    text = vr.text("name", value, required=True)
    if not _NAME.match(text):
        raise ValidationError(
            "must start with a letter or digit and hold only letters, digits, . _ -", field="name"
        )
    return text


def _host(value: object) -> str:
    text = vr.text("host", value, vr="ST")
    if text and not _HOST.match(text):
        raise ValidationError("must be a host name or an IP address", field="host")
    return text


def _secret(field: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValidationError("must be text", field=field)
        if len(value) > 16384:
            raise ValidationError("is too long", field=field)
        return value.strip()

    return check


def remote_path(value: object) -> str:
    """A remote path template: only the known placeholders, no `..`, no control characters."""
    text = vr.text("remote_path", value, vr="ST") or DEFAULT_REMOTE_PATH
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise ValidationError("has an unbalanced { or }", field="remote_path") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValidationError(
                f"may use only {', '.join('{' + p + '}' for p in PLACEHOLDERS)}, not {{{name}}}",
                field="remote_path",
            )
    if ".." in text.replace("\\", "/").split("/"):
        raise ValidationError("must not contain ..", field="remote_path")
    if "\\" in text:
        raise ValidationError("must use / between folders", field="remote_path")
    return text


def base_folder(template: str) -> str:
    """The fixed folder a template starts with (what "test connection" lists): "." if none."""
    fixed = template.split("{", 1)[0]
    folder = fixed.rsplit("/", 1)[0] if "/" in fixed else ""
    if fixed.startswith("/") and not folder:
        return "/"
    return folder or "."


def _marker(value: object) -> str:
    text = vr.text("marker", value)
    if text and not _FILE_NAME.match(text):
        raise ValidationError("must be a plain file name such as COMPLETE", field="marker")
    return text


def _aet(field: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = vr.text(field, value, vr="SH")
        if not text:
            return ""
        if not text.isascii() or not text.isprintable():
            raise ValidationError("must be printable ASCII", field=field)
        return text

    return check


def _certificate(value: object) -> str:
    """A PEM certificate (or several: a CA chain) that the peer's TLS certificate must chain to."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 65536:
        raise ValidationError("must be PEM text of at most 64 KiB", field="tls_ca_pem")
    text = value.strip()
    if not text:
        return ""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise ValidationError("is not a PEM certificate", field="tls_ca_pem") from None
    return text + "\n"


def _base_url(value: object) -> str:
    text = vr.text("base_url", value, vr="ST").rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("must be an http:// or https:// URL with a host", field="base_url")
    if parts.query or parts.fragment or parts.username:
        raise ValidationError("must not hold a query, a fragment or a user", field="base_url")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValidationError("has a bad port", field="base_url") from None
    return text


DESTINATION_FIELDS: Spec = {
    "name": _name,
    "kind": lambda v: DestinationKind(vr.choice("kind", v, KINDS)),
    "enabled": lambda v: True if v is None else vr.boolean("enabled", v),
    "allow_identified": lambda v: vr.boolean("allow_identified", v),
    "host": _host,
    "port": lambda v: 0 if v in (None, "") else vr.integer("port", v, minimum=1, maximum=65535),
    "username": lambda v: vr.text("username", v),
    "auth": lambda v: vr.choice("auth", v, AUTHS, default="key"),
    "private_key": _secret("private_key"),
    "generate_key": lambda v: vr.boolean("generate_key", v),
    "password": _secret("password"),
    "remote_path": remote_path,
    "package_form": lambda v: vr.choice("package_form", v, PACKAGE_FORMS, default="tree"),
    "marker": _marker,
    "called_aet": _aet("called_aet"),
    "calling_aet": _aet("calling_aet"),
    "tls": lambda v: vr.boolean("tls", v),
    "max_pdu": lambda v: (
        0 if v in (None, "") else vr.integer("max_pdu", v, minimum=0, maximum=2**31 - 1)
    ),
    "commitment": lambda v: vr.boolean("commitment", v),
    "rate_limit_kbps": lambda v: (
        0 if v in (None, "") else vr.integer("rate_limit_kbps", v, minimum=0, maximum=10**7)
    ),
    "commitment_port": lambda v: (
        0 if v in (None, "") else vr.integer("commitment_port", v, minimum=0, maximum=65535)
    ),
    "tls_ca_pem": _certificate,
    "base_url": _base_url,
    "auth_header": _secret("auth_header"),
}
COMMON = ("name", "kind", "enabled", "allow_identified", "rate_limit_kbps")
KIND_FIELDS: dict[DestinationKind, tuple[str, ...]] = {
    DestinationKind.SFTP: (
        *COMMON,
        *("host", "port", "username", "auth", "private_key", "generate_key", "password"),
        *("remote_path", "package_form", "marker"),
    ),
    DestinationKind.DICOM: (
        *COMMON,
        *("host", "port", "called_aet", "calling_aet", "tls", "tls_ca_pem", "max_pdu"),
        *("commitment", "commitment_port"),
    ),
    DestinationKind.DICOMWEB: (*COMMON, "base_url", "auth_header"),
}
REQUIRED: dict[DestinationKind, tuple[str, ...]] = {
    DestinationKind.SFTP: ("host", "username"),
    DestinationKind.DICOM: ("host", "called_aet"),
    DestinationKind.DICOMWEB: ("base_url",),
}


def generate_key_pair(comment: str) -> tuple[str, str]:
    """A new Ed25519 key: (private key in OpenSSH format, public key line to give the sponsor)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode('ascii')} {comment}"


def _public_of(private_text: str, comment: str) -> str:
    try:
        key = load_private_key(private_text)
    except TransferError as exc:
        raise ValidationError(exc.message, field="private_key") from None
    return f"{key.get_name()} {key.get_base64()} {comment}"


def _check_kind_fields(kind: DestinationKind, values: Mapping[str, Any]) -> None:
    allowed = set(KIND_FIELDS[kind])
    for name in values:
        if name not in allowed:
            raise ValidationError(f"is not used by {kind.value} destinations", field=name)


def _set_secrets(
    dest: Destination, trial: Trial, vault: Vault, secrets: Mapping[str, Any]
) -> list[str]:
    """Store the given secrets encrypted; return the names of those that changed."""
    changed = []
    comment = f"trialship-{trial.protocol_id}-{dest.name}".replace(" ", "_")
    if secrets.get("generate_key"):
        private, dest.public_key = generate_key_pair(comment)
        dest.private_key_encrypted = vault.encrypt(private)
        changed.append("private_key")
    elif secrets.get("private_key"):
        dest.public_key = _public_of(secrets["private_key"], comment)
        dest.private_key_encrypted = vault.encrypt(secrets["private_key"] + "\n")
        changed.append("private_key")
    if secrets.get("password"):
        dest.password_encrypted = vault.encrypt(secrets["password"])
        changed.append("password")
    if secrets.get("auth_header"):
        dest.auth_header_encrypted = vault.encrypt(secrets["auth_header"])
        changed.append("auth_header")
    return changed


def _check_complete(dest: Destination) -> None:
    for name in REQUIRED[dest.kind]:
        if not getattr(dest, name):
            raise ValidationError(f"is required for a {dest.kind.value} destination", field=name)
    if dest.kind == DestinationKind.SFTP:
        if dest.auth == "key" and dest.private_key_encrypted is None:
            raise ValidationError(
                "give a private key, or ask for one to be generated", field="private_key"
            )
        if dest.auth == "password" and dest.password_encrypted is None:
            raise ValidationError("is required with password authentication", field="password")


def _check_allow_identified(actor: Actor, dest: Destination, wanted: bool | None) -> bool:
    if wanted is None or wanted == dest.allow_identified:
        return False
    if not actor.is_admin:
        raise Forbidden("only an administrator may let a destination receive identified data")
    return True


def _audit_identified(session: Session, actor: Actor, dest: Destination) -> None:
    audit.record(
        session,
        actor,
        "destination.allow_identified",
        object_type="destination",
        object_id=dest.id,
        trial_id=dest.trial_id,
        details={"name": dest.name, "allow_identified": dest.allow_identified},
    )


def _split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool | None]:
    secrets = {k: values.pop(k) for k in (*SECRETS, "generate_key") if k in values}
    return values, secrets, values.pop("allow_identified", None)


def add_destination(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    data: Mapping[str, object],
    today: dt.date,
) -> Destination:
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    values = validate(DESTINATION_FIELDS, data, partial=True)
    if "kind" not in values:
        raise ValidationError("is required: sftp, dicom or dicomweb", field="kind")
    if "name" not in values:
        raise ValidationError("is required", field="name")
    kind: DestinationKind = values.pop("kind")
    _check_kind_fields(kind, {"kind": kind, **values})
    if session.scalar(
        select(Destination.id).where(
            Destination.trial_id == trial.id, Destination.name == values["name"]
        )
    ):
        raise Conflict(f"destination {values['name']} exists already in this trial", field="name")
    values, secrets, identified = _split(values)
    dest = Destination(trial_id=trial.id, kind=kind, allow_identified=False, **values)
    dest.trial = trial
    dest.port = dest.port or DEFAULT_PORTS.get(kind, 0)
    if kind == DestinationKind.SFTP:
        dest.auth = dest.auth or "key"
        dest.remote_path = dest.remote_path or DEFAULT_REMOTE_PATH
        dest.package_form = dest.package_form or "tree"
        if dest.auth == "key" and not secrets.get("private_key"):
            secrets["generate_key"] = True
    if kind == DestinationKind.DICOM:
        dest.calling_aet = dest.calling_aet or DEFAULT_CALLING_AET
    identified_changed = _check_allow_identified(actor, dest, identified)
    if identified_changed:
        dest.allow_identified = bool(identified)
    changed = _set_secrets(dest, trial, vault, secrets)
    _check_complete(dest)
    session.add(dest)
    session.flush()
    audit.record(
        session,
        actor,
        "destination.create",
        object_type="destination",
        object_id=dest.id,
        trial_id=trial.id,
        details={"name": dest.name, "kind": kind.value, "secrets": changed},
    )
    if identified_changed:
        _audit_identified(session, actor, dest)
    return dest


def update_destination(
    session: Session,
    actor: Actor,
    vault: Vault,
    dest: Destination,
    data: Mapping[str, object],
    today: dt.date,
) -> Destination:
    trial = dest.trial
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    values = validate(DESTINATION_FIELDS, data, partial=True)
    if values.get("kind", dest.kind) != dest.kind:
        raise ValidationError("cannot change: add a new destination instead", field="kind")
    values.pop("kind", None)
    _check_kind_fields(dest.kind, values)
    new_name = values.get("name", dest.name)
    if new_name != dest.name and session.scalar(
        select(Destination.id).where(Destination.trial_id == trial.id, Destination.name == new_name)
    ):
        raise Conflict(f"destination {new_name} exists already in this trial", field="name")
    values, secrets, identified = _split(values)
    identified_changed = _check_allow_identified(actor, dest, identified)
    if "port" in values and not values["port"]:
        values["port"] = DEFAULT_PORTS.get(dest.kind, 0)
    if dest.kind == DestinationKind.DICOM and "calling_aet" in values:
        values["calling_aet"] = values["calling_aet"] or DEFAULT_CALLING_AET
    before = (dest.host, dest.port)
    changed = apply(dest, values)
    if (dest.host, dest.port) != before:
        # Another server: its key must be shown and confirmed again.
        for prefix in ("", "pending_"):
            for part in ("type", "base64", "fingerprint"):
                setattr(dest, f"{prefix}host_key_{part}", None)
        changed["host_key"] = True
    if identified_changed:
        dest.allow_identified = bool(identified)
    secret_names = _set_secrets(dest, trial, vault, secrets)
    _check_complete(dest)
    if changed or secret_names:
        dest.updated_at = utcnow()
        audit.record(
            session,
            actor,
            "destination.update",
            object_type="destination",
            object_id=dest.id,
            trial_id=trial.id,
            details={"name": dest.name, "fields": sorted(changed), "secrets": secret_names},
        )
    if identified_changed:
        _audit_identified(session, actor, dest)
    return dest


def list_destinations(session: Session, trial: Trial) -> list[Destination]:
    return list(
        session.scalars(
            select(Destination).where(Destination.trial_id == trial.id).order_by(Destination.name)
        )
    )


def get_destination(session: Session, trial: Trial, destination_pk: int) -> Destination:
    return get_in_trial(session, Destination, trial, destination_pk, "destination")


def destination_by_name(session: Session, trial: Trial, name: str) -> Destination:
    dest = session.scalar(
        select(Destination).where(Destination.trial_id == trial.id, Destination.name == name)
    )
    if dest is None:
        raise NotFound(f"no destination {name!r} in trial {trial.protocol_id}", field="name")
    return dest


# -- the sender's view -----------------------------------------------------------------------


def transfer_destination(
    dest: Destination, vault: Vault, *, path: str = "/"
) -> SftpDestination | DicomDestination | DicomWebDestination:
    """The destination as the senders take it, secrets decrypted (never stored or logged);
    `path` is the remote folder of an SFTP upload. An SFTP host is trusted only through its
    pinned fingerprint."""

    def secret(token: bytes | None) -> str | None:
        return vault.decrypt(token) if token is not None else None

    if dest.kind == DestinationKind.SFTP:
        return SftpDestination(
            host=dest.host,
            port=dest.port or DEFAULT_PORTS[DestinationKind.SFTP],
            user=dest.username,
            path=path,
            host_fingerprint=dest.host_key_fingerprint,
            private_key=secret(dest.private_key_encrypted) if dest.auth == "key" else None,
            password=secret(dest.password_encrypted) if dest.auth == "password" else None,
            marker=dest.marker or None,
        )
    if dest.kind == DestinationKind.DICOM:
        return DicomDestination(
            host=dest.host,
            port=dest.port or DEFAULT_PORTS[DestinationKind.DICOM],
            called_aet=dest.called_aet,
            calling_aet=dest.calling_aet or DEFAULT_CALLING_AET,
            max_pdu=dest.max_pdu,
            commitment=dest.commitment,
            commitment_port=dest.commitment_port or None,
            tls=dest.tls,
            tls_ca=dest.tls_ca_pem or None,
        )
    return DicomWebDestination(
        base_url=dest.base_url, auth_header=secret(dest.auth_header_encrypted)
    )


# -- test connection and host key pinning ----------------------------------------------------

Probe = Callable[[Destination, Vault], ProbeResult]


def run_probe(dest: Destination, vault: Vault) -> ProbeResult:
    """Reach the destination with the transfer code (no database work here)."""
    from trialship.transfer import probe

    target = transfer_destination(dest, vault)
    if isinstance(target, SftpDestination):
        return probe.probe_sftp(
            target,
            base_folder(dest.remote_path),
            private_key=target.private_key,
            pinned_type=dest.host_key_type,
        )
    if isinstance(target, DicomDestination):
        return probe.echo(dataclasses.replace(target, timeout=15.0))
    return probe.qido(dataclasses.replace(target, timeout=15.0))


def check_connection(
    session: Session,
    actor: Actor,
    vault: Vault,
    dest: Destination,
    today: dt.date,
    *,
    probe: Probe | None = None,
) -> ProbeResult:
    """Try the destination; an SFTP host key seen for the first time (or changed) is kept as
    pending for a trial admin to confirm. The audit trail records the outcome only."""
    require(session, actor, dest.trial, Capability.TRIAL_ADMIN, today)
    result = (probe or run_probe)(dest, vault)
    offered = result.host_key
    if offered is not None and offered.fingerprint != dest.host_key_fingerprint:
        dest.pending_host_key_type = offered.type
        dest.pending_host_key_base64 = offered.base64
        dest.pending_host_key_fingerprint = offered.fingerprint
    elif offered is not None:
        dest.pending_host_key_type = None
        dest.pending_host_key_base64 = None
        dest.pending_host_key_fingerprint = None
    dest.last_test_at = utcnow()
    dest.last_test_outcome = result.outcome
    dest.last_test_message = result.message[:2000]
    audit.record(
        session,
        actor,
        "destination.test",
        object_type="destination",
        object_id=dest.id,
        trial_id=dest.trial_id,
        details={"name": dest.name, "outcome": result.outcome},
    )
    return result


def pin_host_key(
    session: Session,
    actor: Actor,
    dest: Destination,
    fingerprint: object,
    today: dt.date,
) -> Destination:
    """Trust the pending host key; `fingerprint` must be the one shown (as typed back)."""
    require(session, actor, dest.trial, Capability.TRIAL_ADMIN, today)
    text = vr.text("fingerprint", fingerprint, vr="ST", required=True)
    if not _FINGERPRINT.match(text):
        raise ValidationError("must look like SHA256:<43 base64 characters>", field="fingerprint")
    if dest.kind != DestinationKind.SFTP:
        raise ValidationError("only SFTP destinations have a host key", field="fingerprint")
    pending = dest.pending_host_key_fingerprint
    if pending is None:
        raise ValidationError(
            "no host key is waiting for confirmation: test the connection first",
            field="fingerprint",
        )
    if text.rstrip("=") != pending:
        raise ValidationError(
            f"does not match the key the server offered ({pending})", field="fingerprint"
        )
    previous = dest.host_key_fingerprint
    dest.host_key_type = dest.pending_host_key_type
    dest.host_key_base64 = dest.pending_host_key_base64
    dest.host_key_fingerprint = pending
    dest.pending_host_key_type = dest.pending_host_key_base64 = None
    dest.pending_host_key_fingerprint = None
    dest.updated_at = utcnow()
    audit.record(
        session,
        actor,
        "destination.pin",
        object_type="destination",
        object_id=dest.id,
        trial_id=dest.trial_id,
        details={"name": dest.name, "fingerprint": pending, "replaced": previous},
    )
    return dest


OUTCOMES = (OK, UNPINNED, FAILED)
