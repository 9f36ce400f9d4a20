"""Periodic chores run by the queue's scheduler."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.registry.models import AuditEvent, Trial
from trialship.services import audit


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
