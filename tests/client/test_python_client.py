"""assay.Client against a live server (werkzeug threads on a loopback port): every call goes over HTTP."""
from __future__ import annotations

import ast
import contextlib
import json
import pathlib
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from assay import errors
from assay.client import ApiError, BadRequest, Client, Forbidden, NotFound, TooManyRequests, Unauthorized

ROOT = pathlib.Path(__file__).resolve().parents[2]
# TF-IDF keeps the retrain worker from loading MiniLM for a handful of items.
LIGHT = {"featurizer": "tfidf"}


@pytest.fixture
def live(tmp_path):
    """A factory: ``live(**config)`` serves create_app on a temporary database; returns (base url, app)."""
    from werkzeug.serving import make_server

    from assay import close_app, create_app

    with contextlib.ExitStack() as stack:
        def start(**config):
            folder = tmp_path / f"instance{len(stack._exit_callbacks)}"
            folder.mkdir()
            app = create_app({"TESTING": True, "DATABASE": str(folder / "assay.sqlite"), "SEED": 0,
                              "RETRAIN_TIMEOUT": 60.0, **config})
            stack.callback(close_app, app)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            stack.callback(thread.join, 10)
            stack.callback(server.shutdown)
            return f"http://127.0.0.1:{server.server_port}", app

        yield start


def raw_error(url: str, method: str = "GET", body=None, headers=None) -> tuple[int, dict]:
    """What the server itself answers, without the client: (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    return caught.value.code, json.loads(caught.value.read())


def test_a_labeling_session_from_dataframe_to_dataframe(live, monkeypatch):
    pd = pytest.importorskip("pandas")
    url, _ = live()
    calls = []
    sent = Client._open

    def recording(self, method, path, *args, **kwargs):
        calls.append((method, path))
        return sent(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Client, "_open", recording)
    c = Client(url, annotator="ana")
    project = c.create_project("tickets", ["bug", "question"], strategy="margin", **LIGHT)
    assert project["name"] == "tickets" and project["labels"] == ["bug", "question"] and project["items"] == 0
    assert [p["id"] for p in c.projects()] == [project["id"]]
    assert c.project("tickets") == c.project(project["id"]) == c.project(str(project["id"]))
    changed = c.update_project("tickets", target_accuracy=0.9, batch_size=5)
    assert changed["target_accuracy"] == 0.9 and changed["batch_size"] == 5 and c.project(project) == changed
    with pytest.raises(BadRequest, match="target_accuracy"):
        c.update_project(project, target_accuracy=2)
    with pytest.raises(TypeError, match="list of names"):
        c.create_project("typo", "bug,question")

    frame = pd.DataFrame({
        "key": ["t1", "t2", "t3", "t4"],
        "body": ["The app crashes on start", "How do I export?", "Crash when saving", "Where are the docs?"],
        "topic": ["bug", "question", None, None],  # NaN: no label, so t3 and t4 stay in the pool
        "votes": pd.Series([3, 0, 7, 1], dtype="int64"),
        "seen": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]),
    })
    result = c.import_items(project, frame, text_column="body", id_column="key", label_column="topic")
    assert result == {"imported": 4, "skipped": 0}
    assert c.import_items(project, frame, text_column="body", id_column="key") == {"imported": 0, "skipped": 4}
    dicts = [{"id": "d1", "text": "Login button does nothing", "source": "mail"},
             {"id": "d2", "text": "Can I change my email?", "source": "chat"}]
    assert c.import_items(project["id"], dicts) == {"imported": 2, "skipped": 0}
    assert c.project(project)["items"] == 6 and c.project(project)["labeled"] == 2

    served = c.queue("tickets", n=3)
    assert len(served) == 3 and len({item["id"] for item in served}) == 3
    texts = {item["id"]: item["data"]["text"] for item in served}
    assert not set(texts.values()) & {"The app crashes on start", "How do I export?"}  # the seeds are labeled
    first, second, third = served
    answer = c.label(project, first, "bug", duration_ms=1200)
    assert answer["item_id"] == first["id"] and answer["label"] == "bug" and answer["annotator"] == "ana"
    c.label(project, second["id"], "question")
    assert c.skip(project, third)["skipped"] is True
    undone = c.undo(project, second)
    assert undone["item_id"] == second["id"] and undone["label"] == "question"

    stats = c.stats(project)
    assert stats["labeled"] == 3 and stats["skipped"] == 1
    assert stats["label_counts"] == {"bug": 2, "question": 1}

    rows = c.export("tickets")
    assert {row["item_id"]: row["label"] for row in rows if row["annotator"] == "ana"} == {first["id"]: "bug"}
    df = c.export_dataframe(project)
    assert list(df.columns[:2]) == ["id", "item_id"] and list(df.columns[-3:]) == ["label", "annotator", "timestamp"]
    assert len(df) == len(rows) == 3
    by_id = df.set_index("item_id")
    assert by_id.loc[first["id"], "data.text"] == texts[first["id"]]
    assert by_id.loc[first["id"], "label"] == "bug" and by_id.loc[first["id"], "annotator"] == "ana"
    seeds = df[df["id"].isin(["t1", "t2"])].set_index("id")
    assert seeds.loc["t1", "label"] == "bug" and seeds.loc["t2", "label"] == "question"
    # The DataFrame's numbers and dates arrive as JSON numbers and ISO strings.
    assert seeds.loc["t1", "data.votes"] == 3 and seeds.loc["t1", "data.seen"].startswith("2024-01-02")
    assert "data.topic" not in df.columns and "data.key" not in df.columns  # the option columns are not data

    every = c.export(project, annotations="all")
    assert len(every) == 3

    # Every route the client calls is one the API document describes.
    from assay.web.api.openapi import SPEC

    routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[0-9]+", path) + "$"), methods)
              for path, methods in SPEC["paths"].items()]
    undescribed = {(m, p) for m, p in calls if not any(r.match(p) and m.lower() in ms for r, ms in routes)}
    assert len(calls) > 15 and not undescribed, undescribed
    assert "from assay import Client" in SPEC["info"]["description"]


def test_multi_label_answers_and_an_empty_export(live):
    pd = pytest.importorskip("pandas")
    url, _ = live()
    c = Client(url)
    project = c.create_project("tags", ["red", "green", "blue"], multi_label=True, **LIGHT)
    empty = c.export_dataframe(project)
    assert empty.empty and list(empty.columns) == ["id", "item_id", "labels", "annotator", "timestamp"]
    # A field only a later item has still lands among the data columns, before export's own.
    c.import_items(project, [{"text": "plain"}, {"text": "coloured", "shade": "teal"}])
    answers = {"plain": ["red", "blue"], "coloured": []}
    for item in c.queue(project, n=2):
        assert c.labels(project, item, answers[item["data"]["text"]])["label"] == answers[item["data"]["text"]]
    df = c.export_dataframe(project)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["id", "item_id", "data.text", "data.shade", "labels", "annotator", "timestamp"]
    assert df["data.text"].tolist() == ["plain", "coloured"] and df["labels"].tolist() == [["red", "blue"], []]
    assert pd.isna(df.loc[0, "data.shade"]) and df.loc[1, "data.shade"] == "teal"
    assert set(df["annotator"]) == {"local"}


def test_the_servers_refusals_raise_with_its_message_and_status(live):
    url, _ = live()
    c = Client(url + "/")
    project = c.create_project("p", ["yes", "no"], **LIGHT)
    c.import_items(project, [{"text": "one"}, {"text": "two"}])
    item = c.queue(project, n=1)[0]

    with pytest.raises(NotFound) as missing:
        c.stats(999)
    status, body = raw_error(f"{url}/api/projects/999/stats")
    assert missing.value.status == status == 404 and missing.value.message == body["error"]
    assert isinstance(missing.value, errors.NotFound) and isinstance(missing.value, ApiError)
    assert missing.value.method == "GET" and missing.value.url.endswith("/api/projects/999/stats")

    with pytest.raises(BadRequest) as bad:
        c.label(project, item, "maybe")
    status, body = raw_error(f"{url}/api/projects/{project['id']}/annotations", "POST",
                             {"item_id": item["id"], "label": "maybe"})
    assert bad.value.status == status == 400 and bad.value.message == body["error"]
    assert "yes" in bad.value.message and isinstance(bad.value, errors.BadRequest)

    with pytest.raises(BadRequest, match="n must be between"):
        c.queue(project, n=0)
    with pytest.raises(errors.NotFound, match="no label on item"):
        c.undo(project, item)
    with pytest.raises(NotFound, match="no project named 'nope'"):
        c.queue("nope")
    with pytest.raises(errors.Conflict) as taken:
        c.create_project("p", ["a", "b"])
    assert taken.value.status == 409
    with pytest.raises(BadRequest, match="no column 'body'"):
        c.import_items(project, [{"text": "x"}], text_column="body")
    with pytest.raises(TypeError):
        c.import_items(project, {"text": "a dict is not a list of items"})
    with pytest.raises(ValueError, match="Out of range float"):
        c.import_items(project, [{"text": "x", "score": float("nan")}])


def test_accounts_need_a_token_and_the_right_role(live):
    from assay import store
    from assay.web import auth

    url, app = live(AUTH=True)
    db = app.extensions["assay.db"]
    tokens = {}
    for name in ("owner", "ann"):
        user = store.create_user(db, name, None)
        tokens[name] = auth.new_token()
        store.add_token(db, user, auth.hash_token(tokens[name]), tokens[name][:12])
        if name == "owner":
            store.grant(db, user, None, "owner")

    owner = Client(url, token=tokens["owner"])
    project = owner.create_project("secret", ["a", "b"], **LIGHT)
    owner.import_items(project, [{"text": "alpha"}, {"text": "beta"}])
    item = owner.queue(project, n=1)[0]
    assert owner.label(project, item, "a")["annotator"] == "owner"
    assert [row["label"] for row in owner.export(project)] == ["a"]

    with pytest.raises(Unauthorized) as anonymous:
        Client(url).queue(project["id"])
    status, body = raw_error(f"{url}/api/projects/{project['id']}/queue")
    assert anonymous.value.status == status == 401 and anonymous.value.message == body["error"]

    with pytest.raises(Unauthorized) as wrong:
        Client(url, token="assay_not-a-token").stats(project["id"])
    status, body = raw_error(f"{url}/api/projects/{project['id']}/stats",
                             headers={"Authorization": "Bearer assay_not-a-token"})
    assert wrong.value.status == status == 401 and wrong.value.message == body["error"]
    assert "unknown or revoked" in wrong.value.message

    annotator = Client(url, token=tokens["ann"])
    with pytest.raises(Forbidden) as refused:
        annotator.queue(project["id"])
    assert refused.value.status == 403 and "ann has no role on project" in refused.value.message
    assert annotator.projects() == []  # the list shows only what this user may see
    with pytest.raises(NotFound):
        annotator.queue("secret")


def test_a_429_is_retried_after_the_wait_the_server_names(live):
    url, _ = live(RATE_LIMIT=2.0, RATE_BURST=1.0)
    patient = Client(url, retries=3)
    assert patient.projects() == []
    assert patient.projects() == []  # the bucket is empty: refused with Retry-After, then served
    with pytest.raises(TooManyRequests) as impatient:
        Client(url, retries=0).projects()
    assert impatient.value.status == 429 and "ASSAY_RATE_LIMIT" in impatient.value.message


def test_an_unreachable_server_says_where_it_looked():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}.*assay serve"):
        Client(f"127.0.0.1:{port}", timeout=5).projects()


def test_without_pandas_export_still_gives_dicts(live, monkeypatch):
    url, _ = live()
    c = Client(url)
    project = c.create_project("plain", ["a", "b"], **LIGHT)
    c.import_items(project, [{"text": "one"}])
    c.label(project, c.queue(project, n=1)[0], "b")
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails as if it were not installed
    assert [row["label"] for row in c.export(project)] == ["b"]
    with pytest.raises(ImportError, match="pip install pandas.*list of dicts"):
        c.export_dataframe(project)


def test_import_assay_does_not_load_the_client_and_the_client_loads_no_pandas():
    code = ("import sys, assay; assert 'assay.client' not in sys.modules; "
            "from assay import Client; import assay.client; assert Client is assay.client.Client; "
            "print(sorted(m for m in ('pandas', 'numpy', 'assay.web', 'assay.store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_client_talks_http_only():
    """Standard library, assay.errors and (inside a function) pandas: nothing of the server's own wings."""
    tree = ast.parse((ROOT / "server" / "client.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{alias.name}" if node.module == "assay" else node.module for alias in node.names}
    foreign = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names} - {"assay.errors", "pandas"}
    assert not foreign, foreign


def test_the_readme_python_example_runs_as_written(live, capsys):
    pytest.importorskip("pandas")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### From Python"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    url, _ = live()
    assert "http://127.0.0.1:5000" in code
    exec(compile(code.replace("http://127.0.0.1:5000", url), "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    said = re.findall(r"print\(.*?\)\s+# (\S+)", code)
    assert said and printed == said


def test_a_token_is_never_sent_over_a_guessed_plain_http():
    """Issue 26: Client("host:5000", token=...) used http:// silently, so the token travelled in clear."""
    with socket.create_server(("0.0.0.0", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        for where in (f"assay.example.com:{port}", f"192.0.2.2:{port}", f"10.1.2.3:{port}", "[2001:db8::1]:5000"):
            with pytest.raises(ValueError, match=rf"https://{re.escape(where)}"):
                Client(where, token="assay_secret")
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing was sent anywhere
    # A scheme written out is taken as written; this machine may be reached without one.
    assert Client("https://assay.example.com:5000", token="t").url == "https://assay.example.com:5000"
    assert Client("http://assay.example.com:5000", token="t").url == "http://assay.example.com:5000"
    for local in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000"):
        assert Client(local, token="t").url == f"http://{local}"
    assert Client("assay.example.com:5000").url == "http://assay.example.com:5000"  # no token, nothing to leak
