"""The CLI beside a running server: `assay create-project` warns when that server cannot import the model (and
the README's order, `assay serve` started where the module imports, works); `assay import` makes it retrain."""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow

ASSAY = os.path.join(os.path.dirname(sys.executable), "assay")  # the console script, as a user runs it

MYMODELS = '''
import pathlib
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pathlib.Path(__file__).with_name("imported").touch()  # proof of an import: the server's check must not run this


def sgd_pipeline():
    return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0))
'''


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "ASSAY_DATABASE": str(tmp_path / "assay.sqlite"), "ASSAY_INSTANCE_PATH": str(tmp_path / "instance"),
            **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


class Serve:
    def __init__(self, tmp_path, env, cwd):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen([ASSAY, "serve", "--port", str(self.port)], env=env, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, open(self.log.name).read()
            try:
                _call(self.url + "/api/projects")
                return
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()


def _assay(env, cwd, *args):
    return subprocess.run([ASSAY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mymodels.py").write_text(MYMODELS)
    return folder


def test_create_project_warns_when_the_running_server_cannot_import_the_model(tmp_path, models_dir):
    # The order: the server was started before PYTHONPATH was exported (in another shell).
    server = Serve(tmp_path, _env(tmp_path), cwd=models_dir)
    try:
        out = _assay(_env(tmp_path, PYTHONPATH=str(models_dir)), models_dir, "create-project", "mine",
                     "--labels", "a,b", "--model", "mymodels:sgd_pipeline", "--strategy", "margin")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1"  # created all the same: the operator may restart the server next
        assert f"the server running at {server.url}" in out.stderr
        assert "cannot import model mymodels:sgd_pipeline: No module named 'mymodels'" in out.stderr
        assert "start `assay serve` again where the module imports" in out.stderr
        (models_dir / "imported").unlink()  # the CLI itself imported it (to check it): that is allowed

        # A built-in model asks nothing and says nothing.
        out = _assay(_env(tmp_path), tmp_path, "create-project", "plain", "--labels", "a,b")
        assert out.returncode == 0 and out.stderr == "", out.stderr
    finally:
        server.stop()
    assert not (models_dir / "imported").exists()  # the server's check ran none of the module's code
    # SIGTERM gave the server no time to remove its record: the next command finds its process gone, says
    # nothing, and removes it.
    out = _assay(_env(tmp_path, PYTHONPATH=str(models_dir)), tmp_path, "create-project", "again",
                 "--labels", "a,b", "--model", "mymodels:sgd_pipeline", "--strategy", "margin")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert not os.listdir(tmp_path / "instance" / "servers")


def test_the_endpoint_answers_only_the_operator_and_imports_nothing(tmp_path, models_dir):
    env = _env(tmp_path, PYTHONPATH=str(models_dir))
    server = Serve(tmp_path, env, cwd=tmp_path)
    try:
        [record_file] = os.listdir(tmp_path / "instance" / "servers")
        path = tmp_path / "instance" / "servers" / record_file
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # only the operator reads the token
        record = json.loads(path.read_text())
        assert record["url"] == server.url and record["pid"] == server.proc.pid
        url = server.url + "/api/operator/importable"
        for headers in ({}, {"X-Assay-Operator": "guess"}):
            with pytest.raises(urllib.error.HTTPError) as refused:
                _call(url, {"kind": "model", "spec": "mymodels:sgd_pipeline"}, headers)
            assert refused.value.code == 403
        token = {"X-Assay-Operator": record["token"]}
        assert _call(url, {"kind": "model", "spec": "mymodels:sgd_pipeline"}, token) == {"importable": True,
                                                                                         "error": None}
        assert _call(url, {"kind": "model", "spec": "nomodule.sub:f"}, token) == {
            "importable": False, "error": "No module named 'nomodule'"}
        assert not (models_dir / "imported").exists()
    finally:
        server.stop()


def test_the_readme_order_works_server_started_where_the_module_imports(tmp_path, models_dir):
    env = _env(tmp_path, PYTHONPATH=str(models_dir))
    server = Serve(tmp_path, env, cwd=tmp_path)
    try:
        out = _assay(env, tmp_path, "create-project", "mine", "--labels", "ham,spam", "--model",
                     "mymodels:sgd_pipeline", "--strategy", "margin", "--featurizer", "tfidf", "--batch-size", "5")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        words = ["win cash prize now", "free entry claim reward", "see you at lunch", "call me when home"]
        items = [{"id": str(i), "text": f"{words[i % 4]} {i}", "label": "spam" if i % 4 < 2 else "ham"}
                 for i in range(40)]
        _call(server.url + "/api/projects/1/items?label_column=label", items)
        deadline = time.monotonic() + 120
        while True:
            history = _call(server.url + "/api/projects/1/stats")["history"]
            if history:
                break
            assert time.monotonic() < deadline, "no retrain within 120 s"
            time.sleep(0.5)
        assert history[-1]["status"] == "ok", history[-1]
    finally:
        server.stop()


def _wait_history(url: str, pid: int, n_labels: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        history = _call(f"{url}/api/projects/{pid}/stats")["history"]
        if history and history[-1]["n_labels"] >= n_labels:
            return history
        assert time.monotonic() < deadline, f"no model on {n_labels} labels within {timeout} s: {history}"
        time.sleep(0.5)


def test_seed_labels_imported_with_the_cli_into_a_running_server_start_a_retrain(tmp_path):
    env = _env(tmp_path)
    server = Serve(tmp_path, env, cwd=tmp_path)
    try:
        pid = _call(server.url + "/api/projects", {"name": "seeds", "labels": ["ham", "spam"], "strategy": "margin",
                                                   "featurizer": "tfidf"})["id"]
        words = ["win cash prize now", "free entry claim reward", "see you at lunch", "call me when home"]

        def rows(start, n):
            return [{"id": str(i), "text": f"{words[i % 4]} {i}", "label": "spam" if i % 4 < 2 else "ham"}
                    for i in range(start, start + n)]

        _call(f"{server.url}/api/projects/{pid}/items?label_column=label", rows(0, 30))  # over HTTP: a retrain
        assert _wait_history(server.url, pid, 30)[-1]["n_labels"] == 30
        seeds = tmp_path / "seeds.jsonl"
        seeds.write_text("".join(json.dumps(r) + "\n" for r in rows(30, 75)))
        out = _assay(env, tmp_path, "import", str(pid), str(seeds), "--label-column", "label")
        assert out.returncode == 0, out.stderr
        assert "imported 75" in out.stdout
        # The server learns of them from the CLI, and trains on all 105.
        last = _wait_history(server.url, pid, 105)[-1]
        assert last["status"] == "ok" and last["n_labels"] == 105
    finally:
        server.stop()


def test_seed_labels_imported_before_the_server_starts_are_trained_on_when_it_starts(tmp_path):
    # The README's tour: create-project, import, then serve.
    env = _env(tmp_path)
    assert _assay(env, tmp_path, "create-project", "early", "--labels", "ham,spam", "--featurizer", "tfidf",
                  "--strategy", "margin").returncode == 0
    words = ["win cash prize now", "free entry claim reward", "see you at lunch", "call me when home"]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": str(i), "text": f"{words[i % 4]} {i}",
                                         "label": "spam" if i % 4 < 2 else "ham"}) + "\n" for i in range(40)))
    out = _assay(env, tmp_path, "import", "early", str(seeds), "--label-column", "label")
    assert out.returncode == 0 and "imported 40" in out.stdout, out.stderr
    server = Serve(tmp_path, env, cwd=tmp_path)
    try:
        last = _wait_history(server.url, 1, 40)[-1]
        assert last["status"] == "ok" and last["n_labels"] == 40
    finally:
        server.stop()
