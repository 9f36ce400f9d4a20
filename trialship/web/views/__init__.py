"""Blueprints of the web UI; one module per area."""

from __future__ import annotations

from flask import Flask


def register_views(app: Flask) -> None:
    from trialship.web.views import (
        admin,
        audit,
        auth,
        destinations,
        discs,
        exams,
        health,
        members,
        subjects,
        submissions,
        timepoints,
        trials,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(trials.bp)
    app.register_blueprint(subjects.bp)
    app.register_blueprint(timepoints.bp)
    app.register_blueprint(members.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(exams.bp)
    app.register_blueprint(destinations.bp)
    app.register_blueprint(discs.bp)
    app.register_blueprint(submissions.bp)
