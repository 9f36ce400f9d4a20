"""`trialship send`: deliver files to an SFTP, DICOM or DICOMweb destination, resumably.

The journal (default `<data>/journals/<hash of sources and destination>.jsonl`) records every
confirmed file, so running the same command again sends only what is missing. Exit 0 only when
every file is confirmed; the signed receipt is written either way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from trialship.cli import data_dir, main
from trialship.errors import ValidationError
from trialship.signing import load_or_create_signing_key
from trialship.transfer import (
    DicomWebDestination,
    Journal,
    SftpDestination,
    TransferReceipt,
    build_package,
    journal_key,
    parse_destination,
    send,
)

EXIT_INCOMPLETE = 3


def _destination(
    url: str,
    identity: Path | None,
    password_env: str | None,
    known_hosts: Path | None,
    calling_aet: str | None,
) -> Any:
    secret = None
    if password_env:
        secret = os.environ.get(password_env)
        if secret is None:
            raise ValidationError(f"environment variable {password_env} is not set")
    destination = parse_destination(url)
    if isinstance(destination, SftpDestination):
        if known_hosts is None and not destination.host_fingerprint:
            default = Path("~/.ssh/known_hosts").expanduser()
            known_hosts = default if default.exists() else None
        return parse_destination(url, identity=identity, password=secret, known_hosts=known_hosts)
    if isinstance(destination, DicomWebDestination):
        return parse_destination(url, auth_header=secret)
    return parse_destination(url, calling_aet=calling_aet)


def _write_receipt(receipt: TransferReceipt, path: Path, data_dir: Path) -> None:
    document = receipt.sign(load_or_create_signing_key(data_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)


@main.command("send")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="sftp://user@host:port/dir, dicom://AET@host:port or dicomweb+http(s)://host:port/path",
)
@click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="SSH private key.",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Env variable holding the SFTP password (or key passphrase), or the "
    "DICOMweb Authorization header.",
)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="known_hosts file pinning the SFTP host key (default ~/.ssh/known_hosts).",
)
@click.option("--calling-aet", metavar="AET", help="Our AE title (default TRIALSHIP).")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Journal file (default under <data>/journals/).",
)
@click.option(
    "--allow-identified", is_flag=True, help="Send files not marked PatientIdentityRemoved=YES."
)
@click.option(
    "--receipt",
    "receipt_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the signed receipt (default under <data>/receipts/).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.pass_context
def send_command(
    ctx: click.Context,
    sources: tuple[Path, ...],
    url: str,
    identity: Path | None,
    password_env: str | None,
    known_hosts: Path | None,
    calling_aet: str | None,
    journal_path: Path | None,
    allow_identified: bool,
    receipt_path: Path | None,
    progress: bool,
) -> None:
    """Send SOURCES (files; folders by their contents, recursively) to URL; resumes."""
    destination = _destination(url, identity, password_env, known_hosts, calling_aet)
    folder = data_dir(ctx)
    key = journal_key(sources, destination.describe())
    journal_path = journal_path or folder / "journals" / f"{key}.jsonl"
    package = build_package(sources, hashed=False)  # the senders hash what they send
    started = time.monotonic()
    console = Console(stderr=True)
    with (
        Journal(journal_path, destination.describe()) as journal,
        Progress(
            TextColumn("[bold]send"),
            BarColumn(),
            TextColumn("{task.fields[files]}/{task.fields[count]} files"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not progress or not console.is_terminal,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("send", total=package.total_bytes, files=0, count=len(package.files))
        done = 0

        def advance(files: int, nbytes: int) -> None:
            nonlocal done
            done += files
            bar.update(task, advance=nbytes, files=done)

        receipt = send(package, destination, journal, advance, allow_identified=allow_identified)
    when = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    receipt_path = receipt_path or folder / "receipts" / f"send-{key[:12]}-{when}.json"
    _write_receipt(receipt, receipt_path, folder)
    elapsed = max(time.monotonic() - started, 1e-6)
    resumed = sum(1 for f in receipt.files if f.resumed)
    confirmed = sum(1 for f in receipt.files if f.confirmed)
    mb = receipt.bytes_sent / 1e6
    click.echo(
        f"{confirmed}/{len(receipt.files)} file(s) confirmed at {destination.describe()} "
        f"({resumed} from an earlier run); {mb:.1f} MB sent in {elapsed:.1f} s "
        f"({mb / elapsed:.1f} MB/s); receipt {receipt_path}"
    )
    if not receipt.complete:
        failed = receipt.failed
        first = failed[0] if failed else None
        why = (
            f"{first.remote}: {first.detail.get('reason') or first.detail.get('status')}"
            if first
            else "; ".join(receipt.problems)
        )
        click.echo(
            f"Error: {len(failed)} file(s) not confirmed ({why}); run again to retry", err=True
        )
        sys.exit(EXIT_INCOMPLETE)
