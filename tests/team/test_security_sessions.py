"""Login sessions against the attacks of issue 9: login CSRF, cookie flags, replay after logout, name probing."""
from __future__ import annotations

import re
import statistics
import time

import pytest

from assay.web import auth
from assay import close_app, create_app, store


@pytest.fixture
def accounts(tmp_path):
    """An app with accounts on, one project, an annotator with a password and one with tokens only."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "AUTH": True, "RATE_LIMIT": 0})
    db = app.extensions["assay.db"]
    from assay.domain import projects

    pid = projects.create(db, {"name": "one", "labels": ["x", "y"], "strategy": "margin"})
    store.insert_items(db, pid, [(str(i), {"text": f"text {i}"}, None) for i in range(4)])
    for name, password in (("alice", "alice-pw"), ("tokens-only", None)):
        user_id = store.create_user(db, name, auth.hash_password(password) if password else None)
        store.grant(db, user_id, pid, "annotator")
    yield app, pid
    close_app(app)


def _csrf(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode()).group(1)


def _login(client, name="alice", password="alice-pw"):
    return client.post("/login", data={"name": name, "password": password, "csrf_token": _csrf(client)})


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _replay(app, cookie: str):
    """A fresh browser that holds only a copy of someone's session cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


# -- 5: login CSRF ---------------------------------------------------------------------

def test_login_without_a_csrf_token_is_refused(accounts):
    app, pid = accounts
    client = app.test_client()
    # A cross-site form: no session cookie, no token. None == None must not count as a match.
    r = client.post("/login", data={"name": "alice", "password": "alice-pw"})
    assert r.status_code == 401 and b"the form expired" in r.data
    assert client.get("/api/projects").status_code == 401
    r = client.post("/login", data={"name": "alice", "password": "alice-pw", "csrf_token": ""})
    assert r.status_code == 401
    _csrf(client)  # now the session holds a token, but the form sends another
    r = client.post("/login", data={"name": "alice", "password": "alice-pw", "csrf_token": "forged"})
    assert r.status_code == 401 and client.get("/api/projects").status_code == 401
    r = client.post("/login", data={"name": "alice", "password": "alice-pw", "csrf_token": "é"})
    assert r.status_code == 401  # not a 500 from compare_digest on non-ASCII text
    assert _login(client).status_code == 302
    assert client.get("/api/projects").status_code == 200


# -- 6: cookie flags -------------------------------------------------------------------

def _set_cookie(response) -> str:
    [cookie] = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("session=")]
    return cookie


def test_session_cookie_is_samesite_lax_and_httponly(accounts):
    app, pid = accounts
    cookie = _set_cookie(_login(app.test_client()))
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Secure" not in cookie  # plain http (loopback): a Secure cookie would never come back


def test_session_cookie_is_secure_over_https(accounts):
    app, pid = accounts
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    cookie = _set_cookie(page)
    assert "Secure" in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_session_cookie_is_secure_when_the_site_says_https(tmp_path):
    # Behind a proxy that ends TLS the request looks like http; the setting says what the users see.
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "AUTH": True,
                      "PREFERRED_URL_SCHEME": "https"})
    try:
        assert "Secure" in _set_cookie(app.test_client().get("/login"))
    finally:
        app.extensions["assay.retrain"].shutdown()
        app.extensions["assay.db"].close()


# -- 7: sessions end at logout ----------------------------------------------------------

def test_session_cookie_stops_working_after_logout(accounts):
    app, pid = accounts
    client = app.test_client()
    assert _login(client).status_code == 302
    stolen = _session_cookie(client)
    assert _replay(app, stolen).get("/api/projects").status_code == 200
    with client.session_transaction() as session:
        token = session["csrf_token"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/projects").status_code == 401
    # The copy kept from before the logout is dead too (a signed cookie alone would still verify).
    replay = _replay(app, stolen)
    assert replay.get("/api/projects").status_code == 401
    assert replay.get(f"/projects/{pid}/annotate").status_code == 302
    # Logging in again works, with a new session.
    assert _login(client).status_code == 302 and client.get("/api/projects").status_code == 200


def test_changing_the_password_ends_existing_sessions(accounts):
    app, pid = accounts
    client = app.test_client()
    assert _login(client).status_code == 302
    result = app.test_cli_runner().invoke(args=["create-user", "alice", "--role", "annotator", "--project", "one",
                                                "--password", "new-pw"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/projects").status_code == 401
    assert _login(client, password="new-pw").status_code == 302


def test_ending_a_users_sessions_leaves_their_tokens_and_other_users_alone(accounts):
    app, pid = accounts
    db = app.extensions["assay.db"]
    alice, other = app.test_client(), app.test_client()
    assert _login(alice).status_code == 302
    user_id = store.create_user(db, "bob", auth.hash_password("bob-pw"))
    store.grant(db, user_id, pid, "annotator")
    assert _login(other, "bob", "bob-pw").status_code == 302
    token = auth.new_token()
    store.add_token(db, store.get_user(db.reader, "alice")["id"], auth.hash_token(token), token[:12])
    store.end_sessions(db, store.get_user(db.reader, "alice")["id"])
    assert alice.get("/api/projects").status_code == 401
    assert other.get("/api/projects").status_code == 200
    assert app.test_client().get("/api/projects", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_end_sessions_command_logs_a_user_out_everywhere(accounts):
    app, pid = accounts
    first, second = app.test_client(), app.test_client()
    assert _login(first).status_code == 302 and _login(second).status_code == 302
    result = app.test_cli_runner().invoke(args=["end-sessions", "alice"])
    assert result.exit_code == 0 and "ended alice's login sessions" in result.output
    assert first.get("/api/projects").status_code == 401 and second.get("/api/projects").status_code == 401
    result = app.test_cli_runner().invoke(args=["end-sessions", "nobody"])
    assert result.exit_code != 0 and "create-user" in result.output


# -- 8: login timing does not tell which names exist ------------------------------------------

def _median_login_seconds(client, name: str, csrf: str, n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.post("/login", data={"name": name, "password": "not-the-password", "csrf_token": csrf})
        times.append(time.perf_counter() - start)
        assert r.status_code == 401
    return statistics.median(times)


def test_login_takes_as_long_for_unknown_names(accounts):
    app, pid = accounts
    client = app.test_client()
    csrf = _csrf(client)
    _median_login_seconds(client, "nobody", csrf, n=1)  # warm up (the first unknown name builds the dummy hash)
    known = _median_login_seconds(client, "alice", csrf)
    unknown = _median_login_seconds(client, "nobody-at-all", csrf)
    no_password = _median_login_seconds(client, "tokens-only", csrf)
    # Before the fix: about 150 ms against 3 ms. Allow plenty of slack for a busy machine.
    for other in (unknown, no_password):
        assert max(known, other) / min(known, other) < 3, (known, unknown, no_password)


@pytest.mark.parametrize("bad_id", ["abc", 2**70, [1], True, -1])
def test_a_signed_session_with_a_malformed_user_id_is_logged_out_not_a_500(accounts, bad_id):
    app, _ = accounts
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user_id"] = bad_id
        sess["generation"] = 0
    r = client.get("/api/projects")
    assert r.status_code == 401
    assert client.get("/").status_code == 302


# -- issue 26: login backoff, and `next` judged as it is sent ---------------------------------------------

def _login_from(app, address, name, password):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return _login(client, name, password)


def test_login_backs_off_per_name_after_repeated_failures(accounts):
    app, pid = accounts
    for _ in range(5):  # from five addresses: the name is counted wherever the guesses come from
        assert _login_from(app, f"10.0.0.{_}", "alice", "guess").status_code == 401
    r = _login_from(app, "10.0.1.1", "alice", "alice-pw")  # even the right password must wait now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and b"try again in" in r.data
    assert _login_from(app, "10.0.1.1", "nobody", "guess").status_code == 401  # other names are not held up
    time.sleep(1.1)  # the first wait is 1 s
    assert _login_from(app, "10.0.1.1", "alice", "alice-pw").status_code == 302
    assert _login_from(app, "10.0.1.1", "alice", "guess").status_code == 401  # the success cleared the count


def test_login_backs_off_per_address_whatever_the_name(accounts):
    app, pid = accounts
    for n in range(20):
        assert _login_from(app, "10.0.2.1", f"name-{n}", "guess").status_code == 401
    r = _login_from(app, "10.0.2.1", "alice", "alice-pw")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert _login_from(app, "10.0.2.2", "alice", "alice-pw").status_code == 302


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example",
                                    "%09//evil.example", "/%0a", "https://evil.example/",
                                    "//evil.example", "/%09%09/evil.example/x?y=1", "javascript:alert(1)"])
def test_login_sends_no_one_off_site_and_never_fails_on_next(accounts, target):
    app, pid = accounts
    client = app.test_client()
    r = client.post(f"/login?next={target}", data={"name": "alice", "password": "alice-pw",
                                                  "csrf_token": _csrf(client)})
    assert r.status_code == 302, r.data[:300]
    location = r.headers["Location"]
    assert "evil" not in location and not location.startswith("//") and location.startswith("/")


def test_login_keeps_a_same_site_next(accounts):
    app, pid = accounts
    client = app.test_client()
    r = client.post(f"/login?next=/projects/{pid}/annotate%3Fn%3D2", data={"name": "alice", "password": "alice-pw",
                                                                            "csrf_token": _csrf(client)})
    assert r.status_code == 302 and r.headers["Location"] == f"/projects/{pid}/annotate?n=2"


def test_a_flood_of_invented_names_does_not_reset_a_guessed_names_backoff(monkeypatch):
    from assay.web import lockout

    monkeypatch.setattr(lockout, "MAX_KEYS", 50)
    now = [0.0]
    backoff = lockout.LoginBackoff(per_name=5, per_address=10**6, clock=lambda: now[0])
    for _ in range(6):
        backoff.failed("alice", "10.0.0.1")
    assert backoff.wait("alice", "10.0.0.2") == pytest.approx(2.0)
    for n in range(500):  # each invented name fails once, from its own address
        backoff.failed(f"invented-{n}", f"10.1.{n // 256}.{n % 256}")
    assert len(backoff._failures) <= 2 * 50 + 2
    assert backoff.wait("alice", "10.0.0.2") == pytest.approx(2.0)  # still counted
    now[0] = 2.5
    assert backoff.wait("alice", "10.0.0.2") == 0.0
