"""Per-request access to the runtime, the database session and the acting user."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Flask, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

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


def json_attachment(document: Any, filename: str) -> Response:
    """`document` as a JSON file to download."""
    return Response(
        json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def size_text(nbytes: int | float) -> str:
    """1.2 GB, 340.5 MB, 12.0 kB, 512 B: file sizes as people read them (SI units)."""
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
    app.jinja_env.filters["size"] = size_text
