"""Periodic chores run by the queue's scheduler."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.registry.models import AuditEvent, Trial
from trialship.services import audit, import_scratch
from trialship.services.exam_import import EXAMS_DIR, ORIGINALS_DIR, SCRATCH_DIR


def record_irb_expiries(session: Session, today: dt.date) -> int:
    """Audit, once per expiry date, each trial whose IRB approval expired. Returns how many."""
    recorded = 0
    for trial in session.scalars(select(Trial).where(Trial.irb_expiry < today)):
        expiry = trial.irb_expiry.isoformat() if trial.irb_expiry else ""
        seen = session.scalars(
            select(AuditEvent.details).where(
                AuditEvent.action == "trial.irb_expired", AuditEvent.trial_id == trial.id
            )
        )
        if any(details.get("expiry") == expiry for details in seen):
            continue
        audit.record(
            session,
            None,
            "trial.irb_expired",
            object_type="trial",
            object_id=trial.id,
            trial_id=trial.id,
            details={"expiry": expiry, "read_only": True},
        )
        recorded += 1
    return recorded


def remove_stale_import_scratch(data_dir: Path, *, now: float) -> int:
    """Remove the scratch folders killed imports left, of every trial (the next import of a
    trial does it for that trial; a trial may see none for long), and the half-written files
    they left among its originals and exams. Returns how many; `now` is compared with file
    times."""
    originals = Path(data_dir) / ORIGINALS_DIR
    try:
        trials = sorted(originals.iterdir())
    except OSError:  # (nothing imported yet)
        return 0
    removed = 0
    for folder in trials:
        removed += import_scratch.remove_stale(folder / SCRATCH_DIR, now=now)
        removed += import_scratch.remove_stale_partials(folder, now=now)
        removed += import_scratch.remove_stale_partials(
            Path(data_dir) / EXAMS_DIR / folder.name, now=now
        )
    return removed
