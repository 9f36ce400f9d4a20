"""The audit trail, filtered by trial, user and action; non-admins see their trials' events."""

from __future__ import annotations

import json

from flask import Blueprint, render_template, request

from trialship.registry.models import Trial
from trialship.services import audit as audit_service
from trialship.services import trials as trial_service
from trialship.services import users
from trialship.web.context import actor, db, today

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50


def visible_filter(
    trial_id: int | None, user_id: int | None, action: str, *, limit: int, offset: int
) -> tuple[audit_service.AuditFilter, list[Trial]]:
    """The filter of what the caller may see, and the trials they may read: admins see every
    event, others their trials' events (403/404 for a trial they may not read); only admins
    filter by user (the API refuses the filter from others; the page does not offer it)."""
    me = actor()
    readable = trial_service.list_trials(db(), me)
    if trial_id is not None:
        trial_service.get_trial(db(), me, trial_id, today())  # 403/404 unless readable
    flt = audit_service.AuditFilter(
        trial_id=trial_id,
        trial_ids=None if me.is_admin else tuple(t.id for t in readable),
        user_id=user_id if me.is_admin else None,
        action=action.strip()[:64],
        limit=limit,
        offset=offset,
    )
    return flt, readable


@bp.get("/audit")
def index() -> str:
    me = actor()
    trial_id = request.args.get("trial", type=int)
    user_id = request.args.get("user", type=int) if me.is_admin else None
    page = max(request.args.get("page", 1, type=int), 1)
    flt, readable = visible_filter(
        trial_id,
        user_id,
        request.args.get("action", ""),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    action = flt.action
    events, total = audit_service.list_events(db(), flt)
    protocols = {t.id: t.protocol_id for t in readable}
    rows = [
        (event, protocols.get(event.trial_id or 0, event.trial_id or ""), _details(event.details))
        for event in events
    ]
    filters = {"trial": trial_id or "", "user": user_id or "", "action": action}
    return render_template(
        "audit/index.html",
        rows=rows,
        total=total,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        filters=filters,
        trials=readable,
        users=users.list_users(db()) if me.is_admin else [],
        actions=audit_service.actions(db()),
    )


def _details(details: object) -> str:
    if not details:
        return ""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
