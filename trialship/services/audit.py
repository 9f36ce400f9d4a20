"""The audit trail: every change and every read of protected data is one appended event."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialship.registry.models import AuditEvent
from trialship.services.authz import Actor


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    object_type: str = "",
    object_id: object = "",
    trial_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event. Details must never hold PHI (identifiers are named, never quoted)."""
    event = AuditEvent(
        user_id=actor.user_id if actor else None,
        actor=actor.label if actor else "anonymous",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        trial_id=trial_id,
        details=details or {},
    )
    session.add(event)
    return event


MAX_PAGE = 1000
"""The most events one page lists (the API's `limit`)."""


@dataclass(frozen=True)
class AuditFilter:
    trial_id: int | None = None
    user_id: int | None = None
    action: str = ""
    limit: int = 100
    offset: int = 0
    trial_ids: tuple[int, ...] | None = None
    """Only events of these trials (what a non-admin may see); None means no such limit."""


def list_events(session: Session, flt: AuditFilter) -> tuple[list[AuditEvent], int]:
    query = select(AuditEvent)
    if flt.trial_id is not None:
        query = query.where(AuditEvent.trial_id == flt.trial_id)
    if flt.trial_ids is not None:
        query = query.where(AuditEvent.trial_id.in_(flt.trial_ids))
    if flt.user_id is not None:
        query = query.where(AuditEvent.user_id == flt.user_id)
    if flt.action:
        query = query.where(AuditEvent.action.startswith(flt.action))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditEvent.id.desc()).limit(flt.limit).offset(flt.offset)
    ).all()
    return list(rows), total


def recent_count(session: Session, action: str, actor_label: str, since: dt.datetime) -> int:
    return (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == action,
                AuditEvent.actor == actor_label,
                AuditEvent.at >= since,
            )
        )
        or 0
    )


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
