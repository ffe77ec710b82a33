"""Browser login and logout (only meaningful with ASSAY_AUTH on)."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from . import auth, get_db
from assay import store
from assay.errors import NotFound

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a link send users elsewhere after login.
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        # The token also stops login CSRF: a foreign page logging the browser in to the attacker's account.
        if not auth.csrf_ok(request.form.get("csrf_token")):
            error = "the form expired; please try again"
        else:
            name = request.form.get("name", "")
            try:
                user = store.get_user(get_db(), name)
            except NotFound:
                user = None
            if auth.password_ok(user, request.form.get("password", "")):  # as slow for unknown names
                auth.start_session(user)
                return redirect(_safe_next(request.args.get("next")))
            error = "wrong name or password"
    return render_template("login.html", error=error, csrf_token=auth.csrf_token(),
                           auth_on=bool(current_app.config.get("AUTH"))), (401 if error else 200)


@bp.post("/logout")
def logout():
    user = auth.resolve_user()
    if user is not None and user.via == "session":
        # Clearing this cookie is not enough: a copy of it (another tab's, a stolen one) would still verify.
        store.end_sessions(get_db(), user.id)
    session.clear()
    return redirect(url_for("accounts.login"))
