"""Blueprints of the web UI; one module per area."""

from __future__ import annotations

from flask import Flask


def register_views(app: Flask) -> None:
    from trialship.web.views import auth, health, trials

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(trials.bp)
