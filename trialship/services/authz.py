"""Who may do what: roles per trial, the admin flag, and the read-only lock of a trial."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialship.errors import Forbidden
from trialship.registry.models import Membership, Role, Trial, TrialStatus, User


class Capability(enum.StrEnum):
    READ = "read"
    """See the trial, its registry, exams and completeness."""
    REGISTRY = "registry"
    """Create and edit sites, subjects, time points and the trial's own fields."""
    MEDIA = "media"
    """Build, label and burn discs."""
    TRIAL_ADMIN = "trial_admin"
    """Everything in the trial: memberships, profile, key export."""


ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.VIEWER: frozenset({Capability.READ}),
    Role.MEDIA: frozenset({Capability.READ, Capability.MEDIA}),
    Role.COORDINATOR: frozenset({Capability.READ, Capability.REGISTRY}),
    Role.TRIAL_ADMIN: frozenset(Capability),
}


@dataclass(frozen=True)
class Actor:
    """The person (or the command line) a use case runs for; named in the audit trail."""

    user_id: int | None
    label: str
    is_admin: bool

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.email, user.is_admin)

    @classmethod
    def command_line(cls, who: str = "cli") -> Actor:
        # Whoever runs the CLI can read the data folder and its keys: they are an admin already.
        return cls(None, who, True)


def role_of(session: Session, actor: Actor, trial_id: int) -> Role | None:
    if actor.user_id is None:
        return None
    return session.scalar(
        select(Membership.role).where(
            Membership.user_id == actor.user_id, Membership.trial_id == trial_id
        )
    )


def capabilities(session: Session, actor: Actor, trial_id: int) -> frozenset[Capability]:
    if actor.is_admin:
        return frozenset(Capability)
    role = role_of(session, actor, trial_id)
    return ROLE_CAPABILITIES[role] if role else frozenset()


def lock_reason(trial: Trial, today: dt.date) -> str | None:
    """Why the trial is read-only for everyone but admins, or None."""
    if trial.irb_expired(today):
        return (
            f"The IRB approval of this trial expired on {trial.irb_expiry:%Y-%m-%d}: it is "
            "read-only until an admin records the renewed approval."
        )
    if trial.status == TrialStatus.CLOSED:
        return "This trial is closed: it is read-only."
    return None


def require(
    session: Session, actor: Actor, trial: Trial, capability: Capability, today: dt.date
) -> None:
    """Raise Forbidden unless the actor holds the capability and, for writes, the trial is open."""
    held = capabilities(session, actor, trial.id)
    if capability not in held:
        if Capability.READ not in held:
            raise Forbidden(f"you are not a member of trial {trial.protocol_id}")
        raise Forbidden(
            f"your role in trial {trial.protocol_id} does not allow this ({capability})"
        )
    if capability != Capability.READ and not actor.is_admin:
        reason = lock_reason(trial, today)
        if reason:
            raise Forbidden(reason)


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only an administrator may do this")
