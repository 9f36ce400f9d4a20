"""Log in and out."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from trialship.errors import Unauthorized
from trialship.services import users
from trialship.web.context import commit, db, runtime

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a phishing link borrow our login page.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("trials.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template("login.html", email="", error=None)
    settings = runtime().settings
    email = request.form.get("email", "")
    try:
        user = users.authenticate(
            db(),
            email=email,
            password=request.form.get("password", ""),
            remote=request.remote_addr or "unknown",
            max_attempts=settings.login_attempts,
            window=dt.timedelta(minutes=settings.login_window_minutes),
        )
    except Unauthorized as exc:
        commit()  # keep the record of the failed attempt: it drives the rate limit
        return render_template("login.html", email=email, error=str(exc)), 401
    commit()
    session.clear()
    session.permanent = True
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
