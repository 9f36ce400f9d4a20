"""Accounts: users (admins only) and API tokens (everyone their own; admins all)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from trialship.errors import ValidationError
from trialship.services import users
from trialship.web.context import actor, commit, db
from trialship.web.forms import save_or_rerender

bp = Blueprint("admin", __name__)
USER_ACTIONS = {
    "disable": {"active": False},
    "enable": {"active": True},
    "make_admin": {"is_admin": True},
    "remove_admin": {"is_admin": False},
}


def _require_admin() -> None:
    if not actor().is_admin:
        abort(403, "only an administrator may manage users")


def _users_page() -> dict[str, object]:
    return {"users": users.list_users(db()), "me": actor().user_id}


@bp.route("/admin/users", methods=["GET", "POST"], endpoint="users")
def users_page() -> Response | str | tuple[str, int]:
    _require_admin()
    if request.method == "GET":
        return render_template("admin/users.html", **_users_page(), values={}, error=None)
    user, page = save_or_rerender(
        lambda: users.create_user(
            db(),
            actor(),
            email=request.form.get("email", ""),
            password=request.form.get("password", ""),
            name=request.form.get("name", ""),
            is_admin="is_admin" in request.form,
        ),
        "admin/users.html",
        **_users_page(),
        # The password is never sent back to the browser.
        values={k: v for k, v in request.form.items() if k != "password"},
    )
    if page:
        return page
    flash(f"User {user.email} created.", "success")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>")
def update_user(user_id: int) -> Response | str | tuple[str, int]:
    _require_admin()
    user = users.get_user(db(), user_id)
    change = USER_ACTIONS.get(request.form.get("action", ""))
    password = request.form.get("password", "")
    if change is None and not password:
        abort(400, "unknown change")
    _, page = save_or_rerender(
        lambda: users.update_user(db(), actor(), user, password=password or None, **change or {}),
        "admin/users.html",
        **_users_page(),
        values={},
    )
    if page:
        return page
    flash(f"User {user.email} saved.", "success")
    return redirect(url_for("admin.users"))


def _tokens_page(**extra: object) -> str:
    # Admins see every token (to revoke a leaked one); others see their own.
    owner = None if actor().is_admin else current_user
    return render_template(
        "admin/tokens.html",
        tokens=users.list_tokens(db(), owner),
        show_owner=actor().is_admin,
        **{"values": {}, "error": None, "new_token": None, **extra},
    )


@bp.get("/tokens")
def tokens() -> str:
    return _tokens_page()


@bp.post("/tokens")
def create_token() -> Response | tuple[str, int]:
    me = users.get_user(db(), actor().user_id or 0)
    try:
        token, plain = users.create_token(db(), actor(), me, request.form.get("name", ""))
    except ValidationError as exc:
        db().rollback()
        page = _tokens_page(error=str(exc), error_field=exc.field, values=request.form)
        return page, exc.http_status
    commit()
    response = make_response(_tokens_page(new_token=plain, new_token_name=token.name))
    response.headers["Cache-Control"] = "no-store"  # the token is shown once, never cached
    return response


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Response:
    token = users.revoke_token(db(), actor(), token_id)
    commit()
    flash(f"Token {token.name} ({token.prefix}…) revoked.", "success")
    return redirect(url_for("admin.tokens"))
