"""Who is making a request, and what they may do.

With ``AUTH`` off (the default for a local install, which then binds only to
loopback) every request acts as an owner of everything, named "local" unless
an ``X-Assay-Annotator`` header names someone else: that lets scripts and
tests act as several annotators. With ``AUTH`` on, the API takes
``Authorization: Bearer TOKEN`` and the pages a login session; state-changing
requests made with a session must carry its CSRF token.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from flask import current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import check_password_hash, generate_password_hash

from assay import store
from assay.domain.settings import SQLITE_MAX

from . import get_db
from assay.errors import BadRequest, Forbidden, NotFound, Unauthorized

LOCAL_USER = "local"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# What each role may do on a project.
PERMISSIONS = {
    "view": set(store.ROLES),
    "annotate": set(store.ROLES),
    "review": {"owner", "reviewer"},
    "see_all_labels": {"owner", "reviewer"},
    "import": {"owner"},
    "export": {"owner"},
    "configure": {"owner"},
}


@dataclass
class User:
    name: str
    id: int | None = None
    roles: dict = field(default_factory=dict)  # {project_id or None (all projects): role}
    via: str = "local"  # "local" | "token" | "session"

    def role_on(self, project_id: int | None) -> str | None:
        if project_id is not None and project_id in self.roles:
            return self.roles[project_id]
        return self.roles.get(None)

    def may(self, action: str, project_id: int | None) -> bool:
        return self.role_on(project_id) in PERMISSIONS[action]

    @property
    def is_admin(self) -> bool:
        return self.roles.get(None) == "owner"


def valid_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest("a user name is 1-64 letters, digits or _.@-")
    return name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "assay_" + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


@functools.cache
def _dummy_hash() -> str:
    # Made by the same method as real hashes (werkzeug's default), so checking against it costs the same.
    return generate_password_hash(secrets.token_urlsafe(16))


def password_ok(user: dict | None, password: str) -> bool:
    """Whether ``password`` is the user's. One hash check whether or not the user exists or has a
    password: otherwise a fast refusal would tell anyone which user names exist."""
    stored = (user or {}).get("password_hash")
    matches = check_password_hash(stored or _dummy_hash(), password)
    return bool(stored) and matches


def _load_user(row: dict, via: str) -> User:
    return User(row["name"], row["id"], store.roles_of(get_db(), row["id"]), via)


def _session_user() -> User | None:
    """The login session's user, unless the session was ended since it began (logout, a new password)."""
    user_id = session.get("user_id")
    try:
        # A cookie signed with an older or leaked key could carry anything here: never a 500.
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= SQLITE_MAX:
            raise NotFound("no such user")
        row = store.get_user(get_db(), user_id)
    except NotFound:
        row = None
    if row is None or session.get("generation") != row["session_generation"]:
        session.clear()
        return None
    return _load_user(row, "session")


def start_session(user: dict) -> None:
    """Log the browser in as ``user``: a fresh session (no fixation), its generation, a new CSRF token."""
    session.clear()
    session["user_id"] = user["id"]
    session["generation"] = user["session_generation"]
    csrf_token()


def resolve_user() -> User | None:
    """The requester, or None when authentication is on and they have not shown who they are."""
    if "assay_user" in g:
        return g.assay_user
    user = None
    if not current_app.config.get("AUTH"):
        name = request.headers.get("X-Assay-Annotator") or LOCAL_USER
        if not _NAME.match(name):
            raise BadRequest("X-Assay-Annotator must be 1-64 letters, digits or _.@-")
        user = User(name, None, {None: "owner"}, "local")
    else:
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("the Authorization header must be 'Bearer TOKEN'")
            row = store.user_for_token(get_db(), hash_token(token.strip()))
            if row is None:
                raise Unauthorized("that API token is unknown or revoked; `assay create-token NAME` makes a new one")
            user = _load_user(row, "token")
        elif session.get("user_id") is not None:
            user = _session_user()
    g.assay_user = user
    return user


def current_user() -> User:
    user = resolve_user()
    if user is None:
        raise Unauthorized("log in, or send Authorization: Bearer TOKEN")
    return user


def require(action: str, project_id: int | None) -> User:
    """The current user if they may do ``action`` on the project, else 403 saying what is missing."""
    user = current_user()
    if not user.may(action, project_id):
        role = user.role_on(project_id)
        if role is None:
            raise Forbidden(f"{user.name} has no role on project {project_id}; an owner can grant one with "
                            f"`assay create-user {user.name} --role annotator --project {project_id}`")
        raise Forbidden(f"{user.name} is {role} on project {project_id}; {action} needs "
                        f"{' or '.join(sorted(PERMISSIONS[action]))}")
    return user


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie marked Secure whenever the site is served over https.

    SESSION_COOKIE_SECURE is one static switch, and on a plain-http loopback install a Secure cookie
    would never come back. So: Secure when the request came over https, or when the settings say the
    site is https (ASSAY_PREFERRED_URL_SCHEME=https or ASSAY_SESSION_COOKIE_SECURE=true, for a proxy
    that ends TLS and forwards plain http).
    """

    def get_cookie_secure(self, app) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE") or app.config.get("PREFERRED_URL_SCHEME") == "https":
            return True
        return has_request_context() and request.is_secure


def csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    """Whether ``sent`` is this session's CSRF token. No token on either side never matches:
    a cross-site form arrives with neither, and None == None would let it through. Compared as bytes:
    compare_digest refuses str with non-ASCII characters, and a hostile form may send them."""
    expected = session.get("csrf_token")
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent).encode(), str(expected).encode())


def check_csrf() -> None:
    """Refuse a state-changing browser request that does not prove it came from our own page."""
    if request.method in SAFE_METHODS:
        return
    user = resolve_user()
    if user is not None and user.via == "token":
        return  # bearer tokens are not sent by browsers on their own, so no CSRF risk
    if csrf_ok(request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")):
        return
    if not current_app.config.get("AUTH"):
        # Without accounts, scripts post without a token; refuse only what a foreign web page could send.
        origin = request.headers.get("Origin")
        if origin is None or origin.split("://", 1)[-1] == request.host:
            return
    raise Forbidden("CSRF token missing or wrong; reload the page and try again")
