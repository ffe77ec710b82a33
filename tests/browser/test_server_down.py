"""The real server process stops mid-session: the page says so, keeps the labels, and carries on when it is back."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from browser_helpers import wait_for, wait_for_item

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


class Server:
    """`assay serve` as its own process (and process group, with its retrain worker) on one database and port."""

    def __init__(self, tmp, port: int):
        self.tmp, self.port, self.proc = tmp, port, None
        self.base = f"http://127.0.0.1:{port}"

    def start(self):
        env = {**os.environ, "ASSAY_DATABASE": str(self.tmp / "assay.sqlite"), "ASSAY_INSTANCE_PATH": str(self.tmp)}
        self.log = open(self.tmp / "serve.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", "from assay.cli import main; main()", "serve",
                                      "--port", str(self.port)], cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.tmp / "serve.log").read_text()
            try:
                _call(self.base, "GET", "/api/projects")
                return
            except OSError:
                assert time.monotonic() < deadline, "assay serve did not answer within 60 s"
                time.sleep(0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path, _free_port())
    s.start()
    yield s
    s.stop()


def test_a_stopped_server_is_named_and_the_page_comes_back_with_every_label(page, server, screenshot):
    base = server.base
    # Labels every 1,000 answers: no retrain runs (and takes the CPU) in this test.
    pid = _call(base, "POST", "/api/projects", {"name": "down", "labels": ["ham", "spam"], "strategy": "random",
                                                "featurizer": "tfidf", "retrain_every": 1000})["id"]
    _call(base, "POST", f"/api/projects/{pid}/items", [{"id": f"m{i}", "text": f"message {i}"} for i in range(12)])

    page.goto(f"{base}/projects/{pid}/annotate")
    shown = [wait_for_item(page)]
    page.keyboard.press("1")
    shown.append(wait_for_item(page, not_id=shown[-1]["id"]))
    wait_for(lambda: _call(base, "GET", f"/api/projects/{pid}/stats")["labeled"] == 1, what="the first label")

    server.stop()
    # The page goes on with the items it holds; then it runs dry.
    while True:
        page.keyboard.press("2")
        page.wait_for_function("""(id) => document.getElementById('item').dataset.itemId !== id""",
                               arg=shown[-1]["id"])
        now = page.evaluate("() => document.getElementById('item').dataset.itemId")
        if not now:
            break
        shown.append({"id": now})
        assert len(shown) < 12, "the page served more items than it could have held"
    unsent = len(shown) - 1
    assert unsent >= 3
    page.wait_for_selector("#done-offline:not([hidden])", timeout=20_000)
    card = page.inner_text("#done")
    screenshot(page, "annotate-server-down.png")
    assert "Nothing left to label" not in card
    assert "The server cannot be reached" in card
    assert f"{unsent} labels wait in this browser to be sent" in card
    assert "sent as soon as the server answers again" in card
    assert page.inner_text("#unreachable") == "server not answering"
    assert page.inner_text("#outbox") == f"{unsent} unsent, retrying"

    server.start()  # the same port and database
    wait_for(lambda: _call(base, "GET", f"/api/projects/{pid}/stats")["labeled"] == 1 + unsent, timeout=30,
             what="the labels made while the server was down")
    page.wait_for_selector("#done-offline", state="hidden", timeout=20_000)
    page.wait_for_selector("#outbox", state="hidden", timeout=20_000)
    page.wait_for_selector("#unreachable", state="hidden")
    # 12 items, 1 + unsent labeled: the rest come to the page again.
    item = wait_for_item(page)
    assert int(item["id"]) not in {int(s["id"]) for s in shown}
    rows = _call(base, "GET", f"/api/projects/{pid}/stats")
    assert rows["label_counts"] == {"ham": 1, "spam": unsent}
    assert page.js_errors == []
