"""Users, logins (rate limited through the audit trail) and API tokens."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialship import crypto
from trialship.errors import Conflict, NotFound, Unauthorized, ValidationError
from trialship.registry.models import ApiToken, User, utcnow
from trialship.services import audit
from trialship.services.authz import Actor, require_admin

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10


def _email(value: object) -> str:
    email = str(value or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValidationError("must be an e-mail address", field="email")
    return email


def _password(value: object) -> str:
    password = str(value or "")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field="password")
    return password


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: object,
    password: object,
    name: object = "",
    is_admin: bool = False,
) -> User:
    require_admin(actor)
    address = _email(email)
    secret = _password(password)
    if session.scalar(select(User.id).where(User.email == address)):
        raise Conflict(f"a user {address} exists already", field="email")
    user = User(
        email=address,
        name=str(name or "").strip()[:200],
        password_hash=crypto.hash_password(secret),
        is_admin=bool(is_admin),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.create",
        object_type="user",
        object_id=user.id,
        details={"email": address, "admin": user.is_admin},
    )
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user {email}", field="email")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def update_user(
    session: Session,
    actor: Actor,
    user: User,
    *,
    name: object | None = None,
    active: bool | None = None,
    is_admin: bool | None = None,
    password: object | None = None,
) -> User:
    require_admin(actor)
    changes: dict[str, object] = {}
    if name is not None:
        user.name = str(name).strip()[:200]
        changes["name"] = True
    if active is not None and active != user.active:
        if not active and user.id == actor.user_id:
            raise ValidationError("you cannot disable your own account", field="active")
        user.active = active
        changes["active"] = active
    if is_admin is not None and is_admin != user.is_admin:
        if not is_admin and user.id == actor.user_id:
            raise ValidationError("you cannot remove your own admin rights", field="is_admin")
        user.is_admin = is_admin
        changes["admin"] = is_admin
    if password:
        user.password_hash = crypto.hash_password(_password(password))
        changes["password"] = "changed"
    audit.record(
        session, actor, "user.update", object_type="user", object_id=user.id, details=changes
    )
    return user


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    remote: str,
    max_attempts: int,
    window: dt.timedelta,
) -> User:
    """Check a login. Failures are audited and counted per e-mail and per address."""
    address = str(email or "").strip().lower()[:254]
    since = utcnow() - window
    by_email = audit.recent_count(session, "login.failed", address, since)
    by_remote = audit.recent_count(session, "login.failed", f"remote:{remote}", since)
    if by_email >= max_attempts or by_remote >= max_attempts * 4:
        raise Unauthorized("too many failed logins: wait a few minutes and try again")
    user = session.scalar(select(User).where(User.email == address))
    if user is None or not crypto.check_password(user.password_hash, password) or not user.active:
        audit.record(
            session, Actor(None, address, False), "login.failed", details={"remote": remote}
        )
        audit.record(session, Actor(None, f"remote:{remote}", False), "login.failed")
        raise Unauthorized("wrong e-mail or password, or the account is disabled")
    user.last_login_at = utcnow()
    audit.record(
        session,
        Actor.of(user),
        "login",
        object_type="user",
        object_id=user.id,
        details={"remote": remote},
    )
    return user


def create_token(session: Session, actor: Actor, user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token for `user`; the plain token is returned once and never stored."""
    if actor.user_id != user.id:
        require_admin(actor)
    label = str(name or "").strip()
    if not label or len(label) > 100:
        raise ValidationError("must be 1 to 100 characters", field="name")
    plain = crypto.new_api_token()
    token = ApiToken(
        user_id=user.id, name=label, token_hash=crypto.hash_api_token(plain), prefix=plain[:10]
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        object_type="token",
        object_id=token.id,
        details={"user": user.email, "name": label},
    )
    return token, plain


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if actor.user_id != token.user_id:
        require_admin(actor)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", object_type="token", object_id=token.id)
    return token


def user_for_token(session: Session, plain: str) -> User:
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == crypto.hash_api_token(plain))
    )
    if token is None or token.revoked_at is not None:
        raise Unauthorized("the API token is unknown or revoked")
    if not token.user.active:
        raise Unauthorized("the token's user is disabled")
    token.last_used_at = utcnow()
    return token.user
