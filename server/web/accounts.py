"""Browser login and logout (only meaningful with ASSAY_AUTH on)."""
from __future__ import annotations

import math
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.urls import iri_to_uri

from . import auth, get_db
from assay import store
from assay.errors import NotFound

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path of this site, else the index (an open redirect would let a link send
    users elsewhere after login).

    Judged as it will be sent: Werkzeug writes the Location through ``iri_to_uri``, whose parsing drops tabs
    and newlines, so ``/<TAB>/evil.example`` went out as ``//evil.example`` (another site), and a newline
    left in made the header a 500."""
    if not target:
        return url_for("pages.index")
    try:
        location = iri_to_uri(target)
        parts = urlsplit(location)
    except ValueError:
        return url_for("pages.index")
    if (parts.scheme or parts.netloc or not location.startswith("/") or location.startswith(("//", "/\\"))
            or any(ord(c) < 0x21 or c == "\x7f" for c in location)):
        return url_for("pages.index")
    return location


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        # The token also stops login CSRF: a foreign page logging the browser in to the attacker's account.
        if not auth.csrf_ok(request.form.get("csrf_token")):
            error = "the form expired; please try again"
        else:
            name = request.form.get("name", "")
            backoff = current_app.extensions["assay.logins"]
            address = request.remote_addr or ""
            wait = backoff.wait(name, address)
            if wait > 0:
                # Refused before the password is checked: a guess made now tells nothing.
                seconds = math.ceil(wait)
                page = render_template("login.html", csrf_token=auth.csrf_token(), auth_on=True,
                                       error=f"too many failed logins for this name or from this address; "
                                             f"try again in {seconds} s")
                return page, 429, {"Retry-After": str(seconds)}
            try:
                user = store.get_user(get_db(), name)
            except NotFound:
                user = None
            if auth.password_ok(user, request.form.get("password", "")):  # as slow for unknown names
                backoff.succeeded(name)
                auth.start_session(user)
                return redirect(_safe_next(request.args.get("next")))
            backoff.failed(name, address)
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
