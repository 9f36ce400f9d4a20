"""Login sessions, CSRF, and the rule that every route but /login and /healthz needs a user."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from trialship.registry.models import User
from trialship.web.context import db

PUBLIC_ENDPOINTS = {"auth.login", "health.healthz", "static"}

login_manager = LoginManager()
csrf = CSRFProtect()


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(user_id: str) -> User | None:
    user = db().get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


def _require_login() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS or request.path.startswith("/api/"):
        return None  # the API authenticates by bearer token itself (and 404s in JSON)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'",
    )
    return response


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    # Login first: an anonymous POST is sent to the login page, not told its CSRF token is bad.
    app.before_request(_require_login)
    csrf.init_app(app)
    app.after_request(_headers)
