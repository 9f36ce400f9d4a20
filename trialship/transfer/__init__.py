"""Senders with one shape: SFTP, DICOM C-STORE, DICOMweb."""

from __future__ import annotations

from collections.abc import Callable

from trialship.transfer.destination import (
    Destination,
    DicomDestination,
    DicomWebDestination,
    SftpDestination,
    parse_destination,
)
from trialship.transfer.errors import IdentifiedDataRefused, TransferError
from trialship.transfer.guard import check_package, refusals
from trialship.transfer.journal import Journal, journal_key
from trialship.transfer.package import MANIFEST_NAME, Package, PackageFile, build_package
from trialship.transfer.receipt import Clock, FileOutcome, TransferReceipt, utc_now

Progress = Callable[[int, int], None]  # (files confirmed, bytes) increments


def send(
    package: Package,
    destination: Destination,
    journal: Journal,
    progress: Progress | None = None,
    *,
    allow_identified: bool = False,
    clock: Clock = utc_now,
) -> TransferReceipt:
    """Send `package` with the sender of the destination's kind (the guard runs first)."""
    if isinstance(destination, SftpDestination):
        from trialship.transfer.sftp import send_sftp

        return send_sftp(
            package, destination, journal, progress, allow_identified=allow_identified, clock=clock
        )
    if isinstance(destination, DicomDestination):
        from trialship.transfer.dimse import send_dimse

        return send_dimse(
            package, destination, journal, progress, allow_identified=allow_identified, clock=clock
        )
    from trialship.transfer.dicomweb import send_dicomweb

    return send_dicomweb(
        package, destination, journal, progress, allow_identified=allow_identified, clock=clock
    )


__all__ = [
    "MANIFEST_NAME",
    "Clock",
    "Destination",
    "DicomDestination",
    "DicomWebDestination",
    "FileOutcome",
    "IdentifiedDataRefused",
    "Journal",
    "Package",
    "PackageFile",
    "Progress",
    "SftpDestination",
    "TransferError",
    "TransferReceipt",
    "build_package",
    "check_package",
    "journal_key",
    "parse_destination",
    "refusals",
    "send",
    "utc_now",
]
