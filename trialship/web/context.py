"""Per-request access to the runtime, the database session and the acting user."""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from trialship.app import Runtime
from trialship.services.authz import Actor


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["trialship"]
    return rt


def db() -> Session:
    """The request's session: views call services with it, then `commit()` on success."""
    if "db_session" not in g:
        g.db_session = runtime().db.new_session()
    session: Session = g.db_session
    return session


def commit() -> None:
    db().commit()


def actor() -> Actor:
    user = g.get("api_user") or current_user
    return Actor.of(user)


def today() -> dt.date:
    return runtime().today()


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
