"""Who belongs to which trial, in which role."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.errors import NotFound, ValidationError
from trialship.registry.models import Membership, Role, Trial, User
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require


def _role(value: object) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise ValidationError(
            f"must be one of {', '.join(r.value for r in Role)}", field="role"
        ) from None


def list_members(session: Session, trial: Trial) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .join(User)
            .where(Membership.trial_id == trial.id)
            .order_by(User.email)
        )
    )


def set_membership(
    session: Session, actor: Actor, trial: Trial, user: User, role: object, today: dt.date
) -> Membership:
    """Give `user` a role in `trial`, replacing any role they had."""
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    new_role = _role(role)
    membership = session.scalar(
        select(Membership).where(Membership.trial_id == trial.id, Membership.user_id == user.id)
    )
    if membership is None:
        membership = Membership(trial_id=trial.id, user_id=user.id, role=new_role)
        session.add(membership)
    else:
        membership.role = new_role
    session.flush()
    audit.record(
        session,
        actor,
        "membership.set",
        object_type="user",
        object_id=user.id,
        trial_id=trial.id,
        details={"user": user.email, "role": new_role.value},
    )
    return membership


def remove_membership(
    session: Session, actor: Actor, trial: Trial, user: User, today: dt.date
) -> None:
    require(session, actor, trial, Capability.TRIAL_ADMIN, today)
    membership = session.scalar(
        select(Membership).where(Membership.trial_id == trial.id, Membership.user_id == user.id)
    )
    if membership is None:
        raise NotFound(f"{user.email} is not a member of this trial")
    session.delete(membership)
    audit.record(
        session,
        actor,
        "membership.remove",
        object_type="user",
        object_id=user.id,
        trial_id=trial.id,
        details={"user": user.email},
    )
