"""Waiting on the page and reading the API, shared by the browser tests."""
from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from types import SimpleNamespace

CURRENT = """() => {
  const text = document.querySelector('#item-body .item-text');
  return {id: document.getElementById('item').dataset.itemId, text: text ? text.textContent : null};
}"""


def current(page) -> dict:
    return page.evaluate(CURRENT)


def wait_for_item(page, not_id: str | None = None, is_id: str | None = None) -> dict:
    page.wait_for_function(
        """([notId, isId]) => {
          const id = document.getElementById('item').dataset.itemId;
          return id && (isId ? id === isId : id !== notId);
        }""",
        arg=[not_id, is_id],
    )
    return current(page)


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def export_rows(api, pid) -> list[dict]:
    text = api.get(f"/api/projects/{pid}/export?format=jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Api:
    """Just enough of an HTTP client to set up and check through the real API."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, *, data: bytes | None = None,
             content_type: str = "application/json"):
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data is not None else {})
        with urllib.request.urlopen(req, timeout=30) as res:
            raw = res.read().decode()
            return json.loads(raw) if res.headers.get_content_type() == "application/json" else raw

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)


@contextlib.contextmanager
def serve(tmp, **config):
    """create_app on a temporary database, served by werkzeug in a thread on a free loopback port."""
    from werkzeug.serving import make_server

    from assay import create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp / "assay.sqlite"), "SEED": 0, "RETRAIN_TIMEOUT": 60.0,
                      **config})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="assay-test-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield SimpleNamespace(url=base, app=app, api=Api(base))
    finally:
        server.shutdown()
        thread.join(10)
        from assay import close_app

        close_app(app)
