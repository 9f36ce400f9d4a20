"""Errors become a page (or JSON under /api): never a 500 for bad input."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from trialship.errors import TrialshipError


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    if wants_json():
        body: dict[str, object] = {"code": code, "message": message}
        if field:
            body["field"] = field
        response = jsonify({"error": body})
    else:
        response = Response(
            render_template("error.html", status=status, message=message), mimetype="text/html"
        )
    response.status_code = status
    return response


def _trialship_error(exc: TrialshipError) -> Response:
    return error_response(exc.http_status, exc.code, str(exc), exc.field)


def _csrf_error(exc: CSRFError) -> Response:
    return error_response(
        400, "csrf", f"The form expired or was not sent by this site: {exc.description}"
    )


def _http_error(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name)


def init_app(app: Flask) -> None:
    app.register_error_handler(TrialshipError, _trialship_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
