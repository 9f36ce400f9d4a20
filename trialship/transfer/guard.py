"""The guard: nothing leaves unless every file says PatientIdentityRemoved = YES."""

from __future__ import annotations

from trialship.transfer.errors import IdentifiedDataRefused
from trialship.transfer.package import Package


def refusals(package: Package) -> list[tuple[str, str]]:
    """(remote path, reason) for every file the guard would refuse."""
    refused = []
    for f in package.files:
        if f.dicom is None:
            refused.append((f.remote, "not a DICOM file, de-identification cannot be checked"))
        elif f.dicom.identity_removed is None:
            refused.append((f.remote, "PatientIdentityRemoved is missing"))
        elif f.dicom.identity_removed.strip().upper() != "YES":
            refused.append((f.remote, f"PatientIdentityRemoved is {f.dicom.identity_removed!r}"))
    return refused


def check_package(package: Package, *, allow_identified: bool = False) -> None:
    """Raise IdentifiedDataRefused naming each refused file, unless `allow_identified`."""
    if allow_identified:
        return
    refused = refusals(package)
    if refused:
        raise IdentifiedDataRefused(refused)
