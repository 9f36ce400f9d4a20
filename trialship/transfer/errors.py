"""Transfer errors: one line each, saying whether a retry could help."""

from __future__ import annotations

from trialship.errors import TrialshipError


class TransferError(TrialshipError):
    """A send that could not finish. `permanent` errors (authentication, host key, association
    rejected, refused files) fail at once; the others may succeed on a later try."""

    code = "transfer"
    exit_code = 3

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class IdentifiedDataRefused(TransferError):
    """The guard: a file lacks PatientIdentityRemoved = YES (or is not DICOM)."""

    code = "identified"
    exit_code = 4

    def __init__(self, refused: list[tuple[str, str]]) -> None:
        shown = "; ".join(f"{name}: {why}" for name, why in refused[:5])
        more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
        super().__init__(
            f"refused {len(refused)} file(s) not marked de-identified: {shown}{more}",
            permanent=True,
        )
        self.refused = refused
