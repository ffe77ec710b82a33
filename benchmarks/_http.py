"""Load-test helpers shared by benchmarks/server.py and benchmarks/team.py.

Also the peer both measure against: a bare Flask + sqlite3 app that commits
one row per label with the same durability as Assay (WAL, synchronous=FULL).
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, timeout: float = 60, path: str = "/api/projects") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def pct(values, q) -> float:
    """The q-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


BARE_APP = r'''
import sqlite3, sys, threading
from flask import Flask, request, jsonify
from waitress import serve
app = Flask(__name__)
local = threading.local()
lock = threading.Lock()
def conn():
    c = getattr(local, "c", None)
    if c is None:
        c = sqlite3.connect(sys.argv[1], isolation_level=None, check_same_thread=False)
        c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=FULL")
        local.c = c
    return c
conn().execute("CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY, item INTEGER, label TEXT)")
@app.get("/api/projects")
def ok():
    return jsonify([])
@app.post("/api/projects/<int:p>/annotations")
def post(p):
    body = request.get_json()
    with lock:
        c = conn(); c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO a (item, label) VALUES (?, ?)", (body["item_id"], body["label"])); c.execute("COMMIT")
    return jsonify({"ok": True}), 201
@app.get("/api/projects/<int:p>/queue")
def queue(p):
    rows = conn().execute("SELECT id FROM a ORDER BY id DESC LIMIT 5").fetchall()
    return jsonify([{"id": i, "data": {}} for i in range(5)])
serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=8, _quiet=True)
'''


def start_bare(tmp: str) -> tuple[subprocess.Popen, int]:
    """The bare Flask peer in its own process on a free port; the caller terminates it."""
    script = os.path.join(tmp, "bare.py")
    with open(script, "w") as fh:
        fh.write(BARE_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, script, os.path.join(tmp, "bare.sqlite"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port)
    return proc, port
