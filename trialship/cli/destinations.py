"""Destinations of a trial: add, list, show, test the connection, confirm the SFTP host key."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click

from trialship.cli import main, print_table, trial_option
from trialship.cli.runtime import cli_actor, find_trial, unit_of_work
from trialship.errors import ValidationError
from trialship.registry.delivery import DEFAULT_REMOTE_PATH, Destination
from trialship.services import destinations as service
from trialship.transfer import DicomDestination, DicomWebDestination, parse_destination
from trialship.transfer.errors import TransferError


def _env(var: str | None, field: str) -> str | None:
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise ValidationError(f"the environment variable {var} is empty or not set", field=field)
    return value


def fields_from_url(url: str, remote_path: str | None) -> dict[str, Any]:
    """The service fields a destination URL names (see `trialship send`)."""
    if "fingerprint=" in url:
        raise ValidationError(
            "a fingerprint is not taken from the URL: run `destination test`, then "
            "`destination pin` with the fingerprint the sponsor confirms",
            field="url",
        )
    parsed = parse_destination(url)
    if isinstance(parsed, DicomWebDestination):
        return {"kind": "dicomweb", "base_url": parsed.base_url}
    if isinstance(parsed, DicomDestination):
        return {
            "kind": "dicom",
            "host": parsed.host,
            "port": parsed.port,
            "called_aet": parsed.called_aet,
            "calling_aet": parsed.calling_aet,
            "max_pdu": parsed.max_pdu,
            "commitment": parsed.commitment,
            "commitment_port": parsed.commitment_port or 0,
            "tls": parsed.tls,
            "tls_ca_pem": parsed.tls_ca or "",
        }
    template = remote_path or DEFAULT_REMOTE_PATH
    folder = unquote(urlsplit(url).path).rstrip("/")
    if folder and not template.startswith("/"):
        template = f"{folder}/{template}"
    fields: dict[str, Any] = {
        "kind": "sftp",
        "host": parsed.host,
        "port": parsed.port,
        "username": parsed.user,
        "remote_path": template,
    }
    if parsed.marker:
        fields["marker"] = parsed.marker
    return fields


@main.group()
def destination() -> None:
    """Destinations of a trial: SFTP, DICOM C-STORE and DICOMweb servers."""


@destination.command("add")
@trial_option
@click.argument("name")
@click.option(
    "--url",
    required=True,
    help="sftp://user@host:port/dir, dicom://AET@host:port or dicomweb+http(s)://host:port/path. "
    "An SFTP folder is put before a relative --remote-path.",
)
@click.option("--identity-generate", is_flag=True, help="SFTP: generate an Ed25519 key (default).")
@click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="SFTP: a private key file (OpenSSH or PEM, no passphrase).",
)
@click.option("--password-env", metavar="VAR", help="SFTP: read the password from this variable.")
@click.option("--remote-path", help=f"SFTP: path template (default {DEFAULT_REMOTE_PATH}).")
@click.option("--package", "package_form", type=click.Choice(service.PACKAGE_FORMS))
@click.option("--marker", help="SFTP: completion marker file written last, e.g. COMPLETE.")
@click.option("--calling-aet", help="DICOM: our AE title (default TRIALSHIP).")
@click.option("--commitment", is_flag=True, default=None, help="DICOM: storage commitment.")
@click.option("--tls", is_flag=True, default=None, help="DICOM: TLS.")
@click.option(
    "--tls-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="DICOM: the peer's certificate or its CA (PEM); default: the system's trusted CAs.",
)
@click.option("--auth-header-env", metavar="VAR", help="DICOMweb: read the auth header from VAR.")
@click.option(
    "--rate-limit",
    "rate_limit_kbps",
    type=click.IntRange(0),
    default=None,
    help="Submissions never send faster than this many kB/s (default: no limit).",
)
@click.option("--allow-identified", is_flag=True, default=None, help="Admin only; audited.")
def destination_add(
    protocol_id: str,
    name: str,
    url: str,
    identity_generate: bool,
    identity: Path | None,
    password_env: str | None,
    remote_path: str | None,
    **options: Any,
) -> None:
    """Add the destination NAME to the trial."""
    fields = {"name": name, **fields_from_url(url, remote_path)}
    kind = fields["kind"]
    given = {k: v for k, v in options.items() if v is not None}
    given.pop("auth_header_env", None)
    tls_ca = given.pop("tls_ca", None)
    if tls_ca is not None:
        fields["tls_ca_pem"] = tls_ca.read_text(errors="replace")
    if kind == "sftp":
        if identity_generate and identity:
            raise ValidationError("give --identity or --identity-generate, not both", field="key")
        password = _env(password_env, "password")
        if identity is not None:
            fields.update(auth="key", private_key=identity.read_text(errors="replace"))
        elif password and not identity_generate:
            fields.update(auth="password", password=password)
        else:
            fields.update(auth="key", generate_key=True)
    if kind == "dicomweb":
        header = _env(options.get("auth_header_env"), "auth_header")
        if header:
            fields["auth_header"] = header
    fields.update(given)
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        dest = service.add_destination(
            session, cli_actor(), runtime.vault, trial, fields, runtime.today()
        )
        click.echo(f"Destination {dest.name} ({dest.kind.value}) added to {trial.protocol_id}.")
        if dest.public_key:
            click.echo("Public key to give the sponsor:")
            click.echo(dest.public_key)


def _where(dest: Destination) -> str:
    if dest.kind == "sftp":
        return f"sftp://{dest.username}@{dest.host}:{dest.port}"
    if dest.kind == "dicom":
        return f"dicom://{dest.called_aet}@{dest.host}:{dest.port}"
    return f"dicomweb+{dest.base_url}"


def _host_key_state(dest: Destination) -> str:
    if dest.kind != "sftp":
        return ""
    if dest.pending_host_key_fingerprint:
        return "MISMATCH" if dest.host_key_fingerprint else "to confirm"
    return "pinned" if dest.host_key_fingerprint else "not seen"


@destination.command("list")
@trial_option
def destination_list(protocol_id: str) -> None:
    """List the trial's destinations."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        print_table(
            [
                {
                    "name": d.name,
                    "kind": d.kind.value,
                    "where": _where(d),
                    "enabled": "yes" if d.enabled else "no",
                    "host_key": _host_key_state(d),
                    "last_test": d.last_test_outcome,
                }
                for d in service.list_destinations(session, trial)
            ],
            ["name", "kind", "where", "enabled", "host_key", "last_test"],
        )


@destination.command("show")
@trial_option
@click.argument("name")
def destination_show(protocol_id: str, name: str) -> None:
    """Show a destination and its public key (secrets only as set / not set)."""
    with unit_of_work() as (runtime, session):
        dest = service.destination_by_name(session, find_trial(session, runtime, protocol_id), name)
        lines = [
            ("name", dest.name),
            ("kind", dest.kind.value),
            ("where", _where(dest)),
            ("enabled", "yes" if dest.enabled else "no"),
            ("allow identified", "yes" if dest.allow_identified else "no"),
        ]
        if dest.kind == "sftp":
            lines += [
                ("auth", dest.auth),
                ("private key", "set" if dest.private_key_encrypted else "not set"),
                ("password", "set" if dest.password_encrypted else "not set"),
                ("remote path", dest.remote_path),
                ("package", dest.package_form),
                ("marker", dest.marker or "-"),
                (
                    "host key",
                    f"{dest.host_key_type} {dest.host_key_fingerprint}"
                    if dest.host_key_fingerprint
                    else "not pinned",
                ),
            ]
            if dest.pending_host_key_fingerprint:
                lines.append(
                    (
                        "offered key",
                        f"{dest.pending_host_key_type} "
                        f"{dest.pending_host_key_fingerprint} (to confirm)",
                    )
                )
        elif dest.kind == "dicom":
            lines += [
                ("calling AE", dest.calling_aet),
                (
                    "TLS",
                    (
                        "on, trusting "
                        + ("the given certificate" if dest.tls_ca_pem else "system CAs")
                    )
                    if dest.tls
                    else "off",
                ),
                ("max PDU", str(dest.max_pdu or "unlimited")),
                (
                    "commitment",
                    (
                        f"on, reports to port {dest.commitment_port}"
                        if dest.commitment_port
                        else "on, same association"
                    )
                    if dest.commitment
                    else "off",
                ),
            ]
        else:
            lines.append(("auth header", "set" if dest.auth_header_encrypted else "not set"))
        if dest.last_test_at:
            lines.append(("last test", f"{dest.last_test_outcome}: {dest.last_test_message}"))
        for label, value in lines:
            click.echo(f"{label + ':':18} {value}")
        if dest.public_key:
            click.echo("public key:")
            click.echo(dest.public_key)


@destination.command("test")
@trial_option
@click.argument("name")
def destination_test(protocol_id: str, name: str) -> None:
    """Test the connection (SSH login and listing, C-ECHO, QIDO-RS). Exit 3 on failure."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        dest = service.destination_by_name(session, trial, name)
        result = service.check_connection(
            session, cli_actor(), runtime.vault, dest, runtime.today()
        )
    if result.ok:
        click.echo(f"ok: {result.message}")
        return
    if result.outcome == "unpinned" and result.host_key is not None:
        click.echo(f"Host key offered: {result.host_key.type} {result.host_key.fingerprint}")
        click.echo(
            "Compare it with the sponsor's, then run: trialship destination pin "
            f"--trial {protocol_id} {name} --fingerprint {result.host_key.fingerprint}"
        )
        return
    click.echo(f"Error: {result.message}", err=True)
    sys.exit(TransferError.exit_code)


@destination.command("pin")
@trial_option
@click.argument("name")
@click.option("--fingerprint", required=True, metavar="SHA256:...", help="As the test showed it.")
def destination_pin(protocol_id: str, name: str, fingerprint: str) -> None:
    """Confirm the SFTP host key the server offered at the last test."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        dest = service.destination_by_name(session, trial, name)
        service.pin_host_key(session, cli_actor(), dest, fingerprint, runtime.today())
        click.echo(f"Host key {dest.host_key_type} {dest.host_key_fingerprint} pinned for {name}.")
