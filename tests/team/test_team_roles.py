"""Accounts and roles, tokens, login sessions with CSRF, and the limits on hostile input."""
from __future__ import annotations

import io
import re
import zipfile

import pytest

from assay import close_app, create_app


@pytest.fixture
def team(tmp_path):
    """An app with authentication on: an admin, and per-project annotator, reviewer and outsider."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "AUTH": True, "RATE_LIMIT": 0})
    runner = app.test_cli_runner()

    def cli(*args):
        result = runner.invoke(args=list(args))
        assert result.exit_code == 0, result.output
        return result.output.strip()

    cli("create-user", "admin", "--role", "owner", "--password", "admin-pw")
    tokens = {"admin": cli("create-token", "admin")}
    client = app.test_client()
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    p1 = client.post("/api/projects", json={"name": "one", "labels": ["x", "y"]}, headers=auth).json["id"]
    p2 = client.post("/api/projects", json={"name": "two", "labels": ["x", "y"]}, headers=auth).json["id"]
    for p in (p1, p2):
        client.post(f"/api/projects/{p}/items", json=[{"id": str(i), "text": f"text {i}"} for i in range(6)],
                    headers=auth)
    cli("create-user", "alice", "--role", "annotator", "--project", "one", "--password", "alice-pw")
    cli("create-user", "rita", "--role", "reviewer", "--project", "one", "--password", "rita-pw")
    cli("create-user", "bob", "--role", "annotator", "--project", "two", "--password", "bob-pw")
    for name in ("alice", "rita", "bob"):
        tokens[name] = cli("create-token", name)
    yield app, client, tokens, cli, p1, p2
    close_app(app)


def _h(tokens, name):
    return {"Authorization": f"Bearer {tokens[name]}"}


def test_requests_without_credentials_are_refused(team):
    app, client, tokens, cli, p1, p2 = team
    r = client.get("/api/projects")
    assert r.status_code == 401 and r.is_json and "Bearer" in r.headers["WWW-Authenticate"]
    r = client.get(f"/projects/{p1}/annotate")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = client.get("/api/projects", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "unknown or revoked" in r.json["error"]
    r = client.get("/api/projects", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert client.get("/api/openapi.json").status_code == 200


def test_annotator_labels_but_cannot_import_export_configure_or_see_others(team):
    app, client, tokens, cli, p1, p2 = team
    alice = _h(tokens, "alice")
    assert [p["name"] for p in client.get("/api/projects", headers=alice).json] == ["one"]
    items = client.get(f"/api/projects/{p1}/queue?n=1", headers=alice).json
    r = client.post(f"/api/projects/{p1}/annotations", json={"item_id": items[0]["id"], "label": "x"}, headers=alice)
    assert r.status_code == 201 and r.json["annotator"] == "alice"
    # The owner labels from their own queue (an item leased to alice would be refused, owner or not).
    items += client.get(f"/api/projects/{p1}/queue?n=1", headers=_h(tokens, "admin")).json
    assert client.post(f"/api/projects/{p1}/annotations", json={"item_id": items[1]["id"], "label": "y"},
                       headers=_h(tokens, "admin")).status_code == 201
    for method, path, body in [
        ("post", f"/api/projects/{p1}/items", [{"text": "sneaky"}]),
        ("get", f"/api/projects/{p1}/export", None),
        ("patch", f"/api/projects/{p1}", {"strategy": "margin"}),
        ("post", "/api/projects", {"name": "mine", "labels": ["a", "b"]}),
        ("get", f"/api/projects/{p2}", None),
        ("get", f"/api/projects/{p2}/queue", None),
        ("get", f"/api/projects/{p1}/agreement", None),
        ("get", f"/api/projects/{p1}/disagreements", None),
        ("post", f"/api/projects/{p1}/reviews", {"item_id": items[0]["id"], "label": "y"}),
    ]:
        r = getattr(client, method)(path, json=body, headers=alice)
        assert r.status_code == 403, (method, path, r.json)
        assert "alice" in r.json["error"]
    stats = client.get(f"/api/projects/{p1}/stats", headers=alice).json
    assert stats["labeled"] == 2 and stats["annotators"] == {"alice": 1}
    assert client.get(f"/api/projects/{p1}/stats", headers=_h(tokens, "admin")).json["annotators"] == \
        {"alice": 1, "admin": 1}
    # alice cannot undo admin's label: undo acts on her own answers only.
    assert client.delete(f"/api/projects/{p1}/annotations/{items[1]['id']}", headers=alice).status_code == 404
    assert client.get(f"/api/projects/{p1}/stats", headers=alice).json["labeled"] == 2


def test_reviewer_sees_agreement_and_adjudicates(team):
    app, client, tokens, cli, p1, p2 = team
    rita = _h(tokens, "rita")
    assert client.get(f"/api/projects/{p1}/agreement", headers=rita).status_code == 200
    r = client.post(f"/api/projects/{p1}/reviews", json={"item_id": 1, "label": "y"}, headers=rita)
    assert r.status_code == 201 and r.json["reviewer"] == "rita"
    assert client.get(f"/api/projects/{p1}/export", headers=rita).status_code == 403
    assert client.post(f"/api/projects/{p1}/reviews", json={"item_id": 1, "label": "y"},
                       headers=_h(tokens, "bob")).status_code == 403


def test_revoked_token_stops_working(team):
    app, client, tokens, cli, p1, p2 = team
    assert client.get("/api/projects", headers=_h(tokens, "bob")).status_code == 200
    assert "revoked 1" in cli("revoke-token", tokens["bob"])
    r = client.get("/api/projects", headers=_h(tokens, "bob"))
    assert r.status_code == 401
    assert "revoked" in cli("list-tokens", "bob")


def test_tokens_are_stored_hashed(team):
    app, client, tokens, cli, p1, p2 = team
    db = app.extensions["assay.db"]
    stored = [r[0] for r in db.reader.execute("SELECT token_hash FROM tokens")]
    assert tokens["alice"] not in stored and len(stored) == 4
    passwords = [r[0] for r in db.reader.execute("SELECT password_hash FROM users")]
    assert not any(p in ("alice-pw", "admin-pw") for p in passwords)


def _login(client, name, password):
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode()).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf})


def test_login_session_needs_csrf_for_changes(team):
    app, client, tokens, cli, p1, p2 = team
    assert _login(client, "alice", "wrong").status_code == 401
    r = _login(client, "alice", "alice-pw")
    assert r.status_code == 302
    assert client.get(f"/projects/{p1}/annotate").status_code == 200
    item = client.get(f"/api/projects/{p1}/queue?n=1").json[0]
    body = {"item_id": item["id"], "label": "x"}
    r = client.post(f"/api/projects/{p1}/annotations", json=body)
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    with client.session_transaction() as session:
        token = session["csrf_token"]
    r = client.post(f"/api/projects/{p1}/annotations", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201 and r.json["annotator"] == "alice"
    r = client.post(f"/api/projects/{p1}/annotations", json=body, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    client.post("/logout", headers={"X-CSRF-Token": token})
    assert client.get("/api/projects").status_code == 401


def test_login_does_not_redirect_off_site(team):
    app, client, tokens, cli, p1, p2 = team
    page = client.get("/login?next=//evil.example/x")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode()).group(1)
    r = client.post("/login?next=//evil.example/x", data={"name": "alice", "password": "alice-pw",
                                                            "csrf_token": csrf})
    assert r.status_code == 302 and "evil.example" not in r.headers["Location"]


# -- without accounts, and the limits ---------------------------------------------------

def test_auth_off_refuses_cross_site_posts(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", json=[{"text": "a"}], headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    host = "localhost"
    r = client.post(f"/api/projects/{pid}/items", json=[{"text": "a"}], headers={"Origin": f"http://{host}"})
    assert r.status_code == 200


@pytest.fixture
def limited_app(tmp_path):
    """``limited_app(**config)``: an app with these limits, shut down after the test."""
    apps = []

    def make(**config):
        apps.append(create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), **config}))
        return apps[-1]

    yield make
    for app in apps:
        close_app(app)


def test_rate_limit_answers_429_with_retry_after(limited_app):
    app = limited_app(RATE_LIMIT=1.0, RATE_BURST=3.0)
    client = app.test_client()
    codes = [client.get("/api/projects").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    r = client.get("/api/projects")
    assert r.is_json and "too many requests" in r.json["error"] and int(r.headers["Retry-After"]) >= 1


def test_upload_and_item_size_limits_answer_413(limited_app):
    app = limited_app(MAX_CONTENT_LENGTH=10_000, MAX_ITEM_BYTES=500)
    client = app.test_client()
    pid = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"]}).json["id"]
    big = b"id,text\n" + b"".join(b"%d,hello\n" % i for i in range(2000))
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(big), "big.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 413 and r.is_json and "limit" in r.json["error"]
    r = client.post(f"/api/projects/{pid}/items", json=[{"text": "ok"}, {"text": "x" * 600}])
    assert r.status_code == 413 and "row 2" in r.json["error"]
    assert client.get(f"/api/projects/{pid}/stats").json["unlabeled"] == 0


def test_huge_csv_line_is_refused_with_a_message(client, make_project):
    pid = make_project()
    huge = b"id,text\n1," + b"a" * 300_000 + b"\n"
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(huge), "h.csv")},
                    content_type="multipart/form-data")
    assert r.status_code in (400, 413) and r.is_json


def test_unexpected_errors_do_not_leak_a_stack_trace(app, client):
    def boom():
        raise RuntimeError("secret internals at /srv/app.py line 12")

    app.add_url_rule("/api/boom", "boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    r = client.get("/api/boom")
    assert r.status_code == 500 and r.is_json
    assert "secret" not in r.data.decode() and "Traceback" not in r.data.decode()


def _png(seed: int) -> bytes:
    from PIL import Image

    img = Image.new("L", (8, 8), color=seed * 20 % 255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_image_archives_import_and_hostile_ones_are_refused(client, make_project):
    pid = make_project("imgs", labels=("cat", "dog"), item_type="image", strategy="margin")

    def upload(raw, name="a.zip"):
        return client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(raw), name)},
                           content_type="multipart/form-data")

    r = upload(_zip({"cat/1.png": _png(1), "dog/2.png": _png(2), "3.png": _png(3), "notes.txt": b"hi"}))
    assert r.status_code == 200 and r.json == {"imported": 3, "skipped": 0}
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["label_counts"] == {"cat": 1, "dog": 1}
    item = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    assert re.fullmatch(r"[0-9a-f]{32}\.png", item["data"]["image"])
    media = client.get(f"/projects/{pid}/media/{item['data']['image']}")
    assert media.status_code == 200 and media.data.startswith(b"\x89PNG")
    assert client.get(f"/projects/{pid}/media/..%2F..%2Fassay.sqlite").status_code == 404

    r = upload(_zip({"../../evil.png": _png(4)}))
    assert r.status_code == 400 and "parent paths" in r.json["error"]
    r = upload(_zip({"bomb.png": b"\0" * 30_000_000}))
    assert r.status_code == 400 and "zip bomb" in r.json["error"]
    r = upload(_zip({"fake.png": b"<script>alert(1)</script>" * 3}, zipfile.ZIP_STORED))
    assert r.status_code == 400 and "not a readable image" in r.json["error"]
    r = upload(b"PK\x03\x04 not really a zip")
    assert r.status_code == 400 and "zip" in r.json["error"]
    assert client.get(f"/api/projects/{pid}/stats").json["items"] == 3
