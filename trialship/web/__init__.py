"""The web app: server-rendered pages, the JSON API under /api/v1, and /healthz."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Request
from werkzeug.routing import IntegerConverter

from trialship.app import Runtime, bootstrap
from trialship.resources import data_dir


class RowIdConverter(IntegerConverter):
    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


class TrialshipRequest(Request):
    """Exam uploads may be many GB in many parts; every other request keeps the app's limits.

    Decided by the endpoint (known before any before_request handler reads the form)."""

    @property  # type: ignore[misc]
    def max_content_length(self) -> int | None:  # type: ignore[override]
        from trialship.web.views.exams import UPLOAD_ENDPOINTS, UPLOAD_MAX_BYTES

        if self.endpoint in UPLOAD_ENDPOINTS:
            return UPLOAD_MAX_BYTES
        return super().max_content_length

    @property  # type: ignore[misc]
    def max_form_parts(self) -> int | None:  # type: ignore[override]
        from trialship.web.views.exams import UPLOAD_ENDPOINTS, UPLOAD_MAX_PARTS

        if self.endpoint in UPLOAD_ENDPOINTS:
            return UPLOAD_MAX_PARTS
        return super().max_form_parts


def create_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    runtime: Runtime | None = None,
    flask_config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the app for production and tests alike (`overrides` are Settings fields)."""
    runtime = runtime or bootstrap(overrides)
    settings = runtime.settings
    app = Flask(
        "trialship",
        template_folder=str(data_dir("templates")),
        static_folder=str(Path(__file__).parent / "static"),
    )
    # Row ids in URLs are 32-bit: a larger number is simply not found (never a DB overflow).
    app.url_map.converters["int"] = RowIdConverter
    app.request_class = TrialshipRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=settings.session_hours * 3600,
        MAX_CONTENT_LENGTH=settings.csv_max_bytes + 1_000_000,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(flask_config or {})
    app.extensions["trialship"] = runtime

    from trialship.web import context, errors, security

    context.init_app(app)
    security.init_app(app)
    errors.init_app(app)

    from trialship.web.views import register_views

    register_views(app)

    from trialship.web import api

    app.register_blueprint(api.bp)
    security.csrf.exempt(api.bp)
    return app
