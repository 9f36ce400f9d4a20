"""Automation rules: "when an exam of time point T is ready, submit it to destination D",
at once or in a daily batch.

A rule acts for the trial admin who made it, within the trial's lock: nothing is sent
automatically from a trial whose IRB approval has lapsed or that is closed. It applies to
exams imported after the rule was created (earlier exams are submitted by hand, so that
switching a rule on never floods a sponsor with a trial's history). An exam goes to a
destination once: an exam already in a submission to it that is done or under way is skipped.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from trialship.errors import Conflict, TrialshipError, ValidationError
from trialship.registry.delivery import Destination
from trialship.registry.models import Exam, ExamState, Trial
from trialship.registry.submissions import AutomationRule, RuleMode, Submission
from trialship.services import audit
from trialship.services.authz import Actor, Capability, lock_reason, require
from trialship.services.fields import get_in_trial
from trialship.services.submissions import already_submitted, create_submission, exam_blocked
from trialship.services.timepoints import get_timepoint

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MODES = tuple(m.value for m in RuleMode)


def add_rule(
    session: Session,
    actor: Actor,
    trial: Trial,
    destination: Destination,
    *,
    timepoint_pk: int | None,
    mode: str,
    daily_at: str,
    today: dt.date,
) -> AutomationRule:
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    if destination.trial_id != trial.id:
        raise ValidationError("choose a destination of this trial", field="destination")
    try:
        chosen = RuleMode(mode or RuleMode.ON_READY.value)
    except ValueError:
        raise ValidationError(f"choose one of {', '.join(MODES)}", field="mode") from None
    daily_at = (daily_at or "").strip()
    if chosen == RuleMode.DAILY and not _TIME.match(daily_at):
        raise ValidationError("a daily rule needs a time as HH:MM (24 h)", field="daily_at")
    if chosen == RuleMode.ON_READY:
        daily_at = ""
    timepoint = get_timepoint(session, trial, timepoint_pk) if timepoint_pk else None
    duplicate = session.scalar(
        select(AutomationRule.id).where(
            AutomationRule.trial_id == trial.id,
            AutomationRule.destination_pk == destination.id,
            AutomationRule.timepoint_pk.is_(None)
            if timepoint is None
            else AutomationRule.timepoint_pk == timepoint.id,
        )
    )
    if duplicate is not None:
        raise Conflict(f"rule {duplicate} already sends these exams to {destination.name}")
    rule = AutomationRule(
        trial_id=trial.id,
        timepoint_pk=timepoint.id if timepoint else None,
        destination_pk=destination.id,
        mode=chosen,
        daily_at=daily_at,
        created_by=actor.label,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor,
        "automation.add",
        object_type="automation_rule",
        object_id=rule.id,
        trial_id=trial.id,
        details={
            "destination": destination.name,
            "timepoint_id": timepoint.timepoint_id if timepoint else "*",
            "mode": chosen.value,
            "daily_at": daily_at,
        },
    )
    return rule


def list_rules(session: Session, trial: Trial) -> list[AutomationRule]:
    return list(
        session.scalars(
            select(AutomationRule)
            .where(AutomationRule.trial_id == trial.id)
            .options(
                selectinload(AutomationRule.destination), selectinload(AutomationRule.timepoint)
            )
            .order_by(AutomationRule.id)
        )
    )


def get_rule(session: Session, trial: Trial, rule_pk: int) -> AutomationRule:
    return get_in_trial(session, AutomationRule, trial, rule_pk, "rule")


def set_rule_enabled(
    session: Session, actor: Actor, rule: AutomationRule, enabled: bool, today: dt.date
) -> AutomationRule:
    trial = session.get(Trial, rule.trial_id)
    assert trial is not None
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    rule.enabled = enabled
    audit.record(
        session,
        actor,
        "automation.enable" if enabled else "automation.disable",
        object_type="automation_rule",
        object_id=rule.id,
        trial_id=rule.trial_id,
    )
    return rule


def delete_rule(session: Session, actor: Actor, rule: AutomationRule, today: dt.date) -> None:
    trial = session.get(Trial, rule.trial_id)
    assert trial is not None
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    audit.record(
        session,
        actor,
        "automation.delete",
        object_type="automation_rule",
        object_id=rule.id,
        trial_id=rule.trial_id,
    )
    session.delete(rule)


def _rule_actor(rule: AutomationRule) -> Actor:
    # The rule was made by a trial admin; the lock is checked by the caller.
    return Actor(None, f"rule {rule.id}", True)


def _ready_exams(session: Session, rule: AutomationRule) -> list[Exam]:
    query = select(Exam).where(
        Exam.trial_id == rule.trial_id,
        Exam.state == ExamState.DEIDENTIFIED,
        Exam.created_at >= rule.created_at,
    )
    if rule.timepoint_pk is not None:
        query = query.where(Exam.timepoint_pk == rule.timepoint_pk)
    exams = [e for e in session.scalars(query.order_by(Exam.id)) if exam_blocked(e) is None]
    sent = already_submitted(session, [e.id for e in exams], rule.destination)
    return [e for e in exams if e.id not in sent]


def _apply(session: Session, rule: AutomationRule, today: dt.date) -> list[Submission]:
    trial = session.get(Trial, rule.trial_id)
    if trial is None or lock_reason(trial, today) is not None or not rule.destination.enabled:
        return []
    created = []
    for exam in _ready_exams(session, rule):
        try:
            created.append(
                create_submission(
                    session,
                    _rule_actor(rule),
                    trial,
                    rule.destination,
                    scope="exam",
                    value=str(exam.id),
                    today=today,
                    trigger=f"rule {rule.id}",
                )
            )
        except TrialshipError as exc:
            # e.g. the host key is not pinned: said once per run in the audit trail
            audit.record(
                session,
                _rule_actor(rule),
                "automation.skipped",
                object_type="automation_rule",
                object_id=rule.id,
                trial_id=rule.trial_id,
                details={"exam": exam.id, "reason": str(exc)[:300]},
            )
            break
    return created


def submit_ready(session: Session, today: dt.date, now_local: dt.datetime) -> list[Submission]:
    """Apply every enabled rule: on-ready rules always, daily rules once a day from their
    time on. Returns the new submissions (the caller enqueues them after commit)."""
    created: list[Submission] = []
    for rule in session.scalars(
        select(AutomationRule).where(AutomationRule.enabled.is_(True)).order_by(AutomationRule.id)
    ):
        if rule.mode == RuleMode.DAILY:
            if rule.last_run_on == today or now_local.strftime("%H:%M") < rule.daily_at:
                continue
            rule.last_run_on = today
        created += _apply(session, rule, today)
    return created


__all__ = [
    "MODES",
    "add_rule",
    "delete_rule",
    "get_rule",
    "list_rules",
    "set_rule_enabled",
    "submit_ready",
]
