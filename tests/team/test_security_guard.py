"""Holes from the adversarial review (issue 9), each kept closed by a test that failed before its fix."""
from __future__ import annotations

import http.client

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from assay import close_app, create_app

EVIL = "evil.example:5000"


@pytest.fixture
def make_app(tmp_path):
    """create_app on a temporary database with extra config; every app made is shut down afterwards."""
    apps = []

    def make(**config):
        app = create_app({"TESTING": True, "DATABASE": str(tmp_path / f"assay{len(apps)}.sqlite"), "SEED": 0,
                          **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


# -- 2. DNS rebinding with auth off --------------------------------------------------------------------


def test_a_rebound_foreign_page_is_refused_before_it_can_change_anything(make_app):
    """evil.example resolved to 127.0.0.1: Origin and Host agree, so only the Host name gives it away."""
    client = make_app().test_client()
    r = client.post("/api/projects", json={"name": "pwned", "labels": ["a", "b"]}, base_url=f"http://{EVIL}",
                    headers={"Origin": f"http://{EVIL}"})
    assert r.status_code == 421, r.get_data(as_text=True)
    assert r.is_json and "ASSAY_ALLOWED_HOSTS" in r.json["error"] and "ASSAY_AUTH" in r.json["error"]
    # Reads too: a rebound page must not read the labels either.
    assert client.get("/api/projects", base_url=f"http://{EVIL}").status_code == 421
    page = client.get("/", base_url=f"http://{EVIL}")
    assert page.status_code == 421 and "ASSAY_ALLOWED_HOSTS" in page.get_data(as_text=True)
    assert client.get("/api/projects").json == []


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "LOCALHOST.:5000", "assay.localhost:8080",
                                  "127.0.0.1", "127.0.0.1:5000", "127.9.9.9:80", "[::1]:5000", "[::1]"])
def test_loopback_hosts_are_answered(make_app, host):
    client = make_app().test_client()
    assert client.get("/api/projects", base_url=f"http://{host}").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1.evil.example", "localhost.evil.example:5000", "10.0.0.5:5000",
                                  "0.0.0.0:5000", "[::2]:5000"])
def test_names_that_only_look_local_are_refused(make_app, host):
    client = make_app().test_client()
    assert client.get("/api/projects", base_url=f"http://{host}").status_code == 421


@pytest.mark.parametrize("allowed", ["box.lan, labeler.example.org", ["box.lan", "labeler.example.org"]])
def test_allowed_hosts_are_answered_with_auth_off(make_app, allowed):
    client = make_app(ALLOWED_HOSTS=allowed).test_client()
    assert client.get("/api/projects", base_url="http://box.lan:5000").status_code == 200
    assert client.get("/api/projects", base_url="http://Labeler.example.org").status_code == 200
    assert client.get("/api/projects", base_url=f"http://{EVIL}").status_code == 421


def test_with_auth_on_any_host_may_ask_and_must_log_in(make_app):
    client = make_app(AUTH=True, RATE_LIMIT=0).test_client()
    assert client.get("/api/projects", base_url="http://assay.example.org").status_code == 401


def test_the_served_process_refuses_a_foreign_host_header(assay_server):
    """The same through waitress, as deployed: the raw Host header decides."""
    server = assay_server()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/api/projects", body=b'{"name": "pwned", "labels": ["a", "b"]}',
                     headers={"Host": f"evil.example:{server.port}", "Origin": f"http://evil.example:{server.port}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 421, resp.read()
        resp.read()
    finally:
        conn.close()
    status, projects = server.client().get("/api/projects")
    assert status == 200 and projects == []


# -- 3. `assay run --host 0.0.0.0` with auth off ---------------------------------------------------------


def _assay(app, *args):
    """The real `assay` group (Flask's default commands and all) on ``app``, through click's runner."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from assay.cli import cli

    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)


def test_assay_run_cannot_listen_beyond_loopback_without_auth(make_app, monkeypatch):
    started = []
    fake = lambda *a, **kw: started.append((a, kw))  # noqa: E731  (a server that never blocks)
    monkeypatch.setattr("flask.cli.run_simple", fake)
    monkeypatch.setattr("werkzeug.serving.run_simple", fake)
    result = _assay(make_app(), "run", "--host", "0.0.0.0", "--port", "5998")
    assert result.exit_code != 0 and started == [], result.output
    # `serve` is the way to run it, and it keeps the loopback rule.
    result = _assay(make_app(), "serve", "--host", "0.0.0.0", "--port", "5998")
    assert result.exit_code != 0 and "refusing to listen on 0.0.0.0" in result.output


def test_assay_help_lists_serve_and_no_unguarded_run(make_app):
    result = _assay(make_app(), "--help")
    assert result.exit_code == 0
    commands = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert "serve" in commands and "run" not in commands, commands


# -- 12. Rate limit with auth off ----------------------------------------------------------------------------


def test_a_new_annotator_name_per_request_does_not_escape_the_rate_limit(make_app):
    client = make_app(RATE_LIMIT=0.1, RATE_BURST=3.0).test_client()  # refills in 10 s: timing cannot matter
    codes = [client.get("/api/projects", headers={"X-Assay-Annotator": f"name{i}"}).status_code for i in range(8)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429] * 5, codes


def test_other_addresses_keep_their_own_bucket(make_app):
    client = make_app(RATE_LIMIT=0.1, RATE_BURST=2.0).test_client()
    first = [client.get("/api/projects", environ_base={"REMOTE_ADDR": "127.0.0.2"}).status_code for _ in range(3)]
    other = client.get("/api/projects", environ_base={"REMOTE_ADDR": "127.0.0.3"}).status_code
    assert first == [200, 200, 429] and other == 200


# -- 15. Media caching, MIME sniffing, framing, CSP ------------------------------------------------------------

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), color=90).save(buf, format="PNG")
    return buf.getvalue()


def _owner_token(app, name="admin") -> dict:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", name, "--role", "owner", "--password", ""])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {runner.invoke(args=['create-token', name]).output.strip()}"}


def _image_project(client, headers=None) -> tuple[int, str]:
    import io

    pid = client.post("/api/projects", json={"name": "imgs", "labels": ["a", "b"], "item_type": "image"},
                      headers=headers).json["id"]
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(_png()), "one.png")},
                    content_type="multipart/form-data", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return pid, client.get(f"/api/projects/{pid}/queue?n=1", headers=headers).json[0]["data"]["image"]


def _assert_hardened(response):
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.request.path
    assert response.headers.get("X-Frame-Options") == "DENY", response.request.path
    assert response.headers.get("Content-Security-Policy") == CSP, response.request.path


def test_every_response_forbids_sniffing_and_framing_and_carries_the_csp(make_app):
    client = make_app().test_client()
    pid, image = _image_project(client)
    for path in ("/", f"/projects/{pid}", f"/projects/{pid}/annotate", f"/projects/{pid}/review",
                 f"/projects/{pid}/live", f"/projects/{pid}/learning-curve.png", f"/projects/{pid}/media/{image}",
                 "/api/projects", "/static/assay.css", "/projects/999", "/api/projects/999", "/login"):
        r = client.get(path)
        assert r.status_code in (200, 404), (path, r.status_code)
        _assert_hardened(r)
    _assert_hardened(client.get("/", base_url="http://evil.example"))  # refusals too


def test_media_is_cached_privately_with_auth_on(make_app):
    app = make_app(AUTH=True, RATE_LIMIT=0)
    client, headers = app.test_client(), _owner_token(app)
    pid, image = _image_project(client, headers)
    for path in (f"/projects/{pid}/media/{image}", f"/projects/{pid}/learning-curve.png?v=0"):
        r = client.get(path, headers=headers)
        assert r.status_code == 200, path
        assert r.cache_control.private and not r.cache_control.public, (path, r.headers["Cache-Control"])
        _assert_hardened(r)
    # Without accounts nothing is private, so media may be cached by anyone for a day.
    client = make_app().test_client()
    pid, image = _image_project(client)
    r = client.get(f"/projects/{pid}/media/{image}")
    assert r.cache_control.public and r.cache_control.max_age == 86400


def test_pages_have_nothing_inline_the_csp_would_block():
    """The CSP allows no inline script or style: templates must not need any."""
    import glob
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in glob.glob(os.path.join(root, "templates", "*.html")):
        html = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        assert not re.search(r"\sstyle\s*=", html, re.I), f"{name}: a style= attribute"
        assert not re.search(r"<style", html, re.I), f"{name}: a <style> element"
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), f"{name}: an inline event handler"
        assert "javascript:" not in html.lower(), f"{name}: a javascript: URL"
        for tag in re.findall(r"<script\b[^>]*>", html, re.I):
            assert "src=" in tag or 'type="application/json"' in tag, f"{name}: an inline script {tag}"


# -- The schemathesis fuzz with accounts on, as an owner with a bearer token -----------------------------------

FUZZ_ITEMS = 40
auth_schema = schemathesis.pytest.from_fixture("auth_api_schema")


@pytest.fixture(scope="module")
def auth_fuzz_server(tmp_path_factory, team_kit):
    server = team_kit.AssayServer(tmp_path_factory.mktemp("fuzz-auth"), env={"ASSAY_AUTH": "true"})
    tokens = {}
    for name, role in (("admin", "owner"), ("ann1", "annotator"), ("ann2", "annotator")):
        server.cli("create-user", name, "--role", role, "--password", "")
        tokens[name] = server.cli("create-token", name).strip()
    server.start()
    admin = server.client(token=tokens["admin"])
    project_id = server.create_project(admin, "fuzzed", team_kit.sms_texts(FUZZ_ITEMS), overlap=2)
    assert project_id == 1
    for annotator, label in (("ann1", "ham"), ("ann2", "spam")):
        client = server.client(token=tokens[annotator])
        status, items = client.get(f"/api/projects/{project_id}/queue?n=5")
        assert status == 200 and len(items) == 5, items
        for it in items:
            status, body = client.post(f"/api/projects/{project_id}/annotations", {"item_id": it["id"], "label": label})
            assert status == 201, body
        client.close()
    admin.close()
    server.tokens = tokens
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_api_schema(auth_fuzz_server):
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{auth_fuzz_server.port}/api/openapi.json")


@pytest.mark.slow
@auth_schema.parametrize()
@settings(max_examples=30, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_server_error_with_auth_on(case, auth_fuzz_server):
    headers = {"Authorization": f"Bearer {auth_fuzz_server.tokens['admin']}"}
    case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)
    # As in test_team_fuzz: aim generated ids at the seeded project and items to get past the 404.
    params = case.path_parameters or {}
    if "id" not in params:
        return
    params["id"] = 1
    if "item_id" in params:
        params["item_id"] = 1 + len(str(params["item_id"])) % FUZZ_ITEMS
    if isinstance(case.body, dict) and type(case.body.get("item_id")) is int:
        case.body["item_id"] = 1 + abs(case.body["item_id"]) % FUZZ_ITEMS
    case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)


# -- issue 26: a body over its route's limit is refused before it is read (waitress, as deployed) -------------

def _head(port: int, path: str, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock, timeout: float) -> bytes:
    """What the server says within ``timeout`` seconds (b"" if nothing; a reset counts as what came before)."""
    import socket

    sock.settimeout(timeout)
    got = b""
    try:
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return got


@pytest.fixture
def limited_server(assay_server):
    return assay_server(env={"ASSAY_AUTH": "true", "ASSAY_MAX_CONTENT_LENGTH": str(4 * 1024 * 1024)})


@pytest.mark.parametrize("path, size", [("/login", 200 * 1024 * 1024), ("/login", 1024 * 1024 + 1),
                                        ("/api/projects", 2 * 1024 * 1024),
                                        ("/api/projects/1/items", 4 * 1024 * 1024 + 1)])
def test_a_declared_body_over_its_routes_limit_is_refused_before_it_is_read(limited_server, path, size):
    import socket

    port = limited_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(port, path, {"Content-Type": "application/x-www-form-urlencoded",
                                        "Content-Length": size}))
        answer = _answer(sock, timeout=10)  # not one byte of the body was sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    # The server goes on: a small request on a new connection is answered.
    status, _ = limited_server.client().get("/api/openapi.json", retry=False)
    assert status == 200


def test_a_body_within_the_upload_limit_still_reaches_the_import_route(limited_server):
    import socket

    port = limited_server.port
    body = b"x" * (2 * 1024 * 1024)  # over the JSON limit, within the upload limit: the app decides (401: no login)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port, "/api/projects/1/items", {"Content-Type": "text/csv", "Content-Length": len(body)}))
        sock.sendall(body)
        answer = _answer(sock, timeout=30)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]


def test_a_chunked_body_is_cut_off_at_the_routes_limit(limited_server):
    import socket

    port = limited_server.port
    chunk = b"a=" + b"x" * (64 * 1024 - 2)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(port, "/login", {"Content-Type": "application/x-www-form-urlencoded",
                                            "Transfer-Encoding": "chunked"}))
        sent = 0
        try:
            while sent < 3 * 1024 * 1024:  # three times the limit, and never the last chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: it read no more
        answer = _answer(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 413"), (sent, answer[:300])
