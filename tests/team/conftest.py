"""A real `assay serve` process on a free loopback port, for the team tests.

The team checks (leases under concurrency, SIGKILL mid-stream, fuzzing) are
about the server as deployed: waitress threads, the single SQLite writer, the
retrain worker process. So the server runs as its own process, started the
way a user starts it, on a temporary instance folder; each client thread keeps
its own HTTP connection. With ``--postgres`` the servers of ``assay_server`` store
in a fresh PostgreSQL database each (tests/conftest.py).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMS_PATH = os.path.join(REPO, "server", "demo", "sms_spam.tsv")
# Connection-level failures: the server went away (killed) or closed an idle keep-alive connection.
CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, OSError)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sms_texts(n: int) -> list[str]:
    """The first ``n`` distinct SMS messages of the demo set: real, varied texts the featurizer can fit. (The set
    repeats some messages; a label on one copy labels the others too, issue 29.5, which would change the counts
    these tests keep of labels per item.)"""
    with open(SMS_PATH, encoding="utf-8") as fh:
        next(fh)
        texts = list(dict.fromkeys(line.rstrip("\n").split("\t", 1)[1] for line in fh))
    return texts[:n]


class Client:
    """One HTTP/1.1 keep-alive connection acting as one annotator (or one token)."""

    def __init__(self, port: int, annotator: str | None = None, token: str | None = None, timeout: float = 60):
        self.port = port
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if annotator is not None:
            self.headers["X-Assay-Annotator"] = annotator
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body=None, *, retry: bool = True):
        """(status, parsed JSON or text). With ``retry``, one reconnect after a dropped connection."""
        payload = None if body is None else json.dumps(body)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=payload, headers=self.headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except CONNECTION_ERRORS:
                self.close()
                if retry and attempt == 0:
                    continue
                raise
            text = raw.decode("utf-8", "replace")
            if resp.getheader("Content-Type", "").startswith("application/json"):
                return resp.status, json.loads(text)
            return resp.status, text
        raise AssertionError("unreachable")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class AssayServer:
    """`python -m assay.cli serve` on a temp instance folder; restartable on the same database."""

    def __init__(self, root: str, env: dict | None = None, threads: int = 8, database: str | None = None):
        self.root = str(root)
        # The DATABASE setting: a SQLite file in the instance folder unless given (a PostgreSQL URL).
        self.db_path = database or os.path.join(self.root, "assay.sqlite")
        os.makedirs(self.root, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        # Rate limiting keys on the client address when auth is off, so every loopback client would share
        # one bucket; the team tests are about leases and durability, not the limiter.
        self.env = {**base, "ASSAY_DATABASE": self.db_path, "ASSAY_INSTANCE_PATH": self.root,
                    "ASSAY_RATE_LIMIT": "0", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.threads = threads
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(self.root, "server.log")
        self.starts = 0

    # -- process ------------------------------------------------------------
    def cli(self, *args: str) -> str:
        """Run an `assay` subcommand on this instance's database; its stdout."""
        out = subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO, env=self.env,
                             capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise AssertionError(f"assay {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
        return out.stdout

    def start(self, timeout: float = 120.0) -> "AssayServer":
        self.port = free_port()
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"\n===== start {self.starts} on port {self.port}\n")
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay.cli", "serve", "--port", str(self.port), "--threads", str(self.threads)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with Client(self.port, timeout=5) as probe:  # closed: a leaked socket per start otherwise
                    status, _ = probe.get("/api/openapi.json", retry=False)
                if status == 200:
                    return self
            except CONNECTION_ERRORS:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not answer within {timeout:g} s:\n{self.log_tail()}")

    def _family(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> list[int]:
        """SIGKILL the server process, then every child it had (the retrain worker). Returns the pids killed."""
        family = self._family()
        assert family and family[0].pid == self.proc.pid, "the server process is already gone"
        killed = []
        for proc in family:  # the server first: that is the crash; its children must not outlive it
            try:
                os.kill(proc.pid, signal.SIGKILL)
                killed.append(proc.pid)
            except ProcessLookupError:
                pass
        self.proc.wait(30)
        psutil.wait_procs([p for p in family[1:]], timeout=10)
        return killed

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        family = self._family()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for child in family[1:]:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family[1:], timeout=10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()[-n:]
        except OSError:
            return ""

    def query(self, sql: str, params=()) -> list[tuple]:
        """Rows of one read on the server's database, from outside the server (either engine)."""
        from assay import store

        handle = store.open_readonly(self.db_path)
        try:
            return [tuple(r) for r in handle.reader.execute(sql, params).fetchall()]
        finally:
            handle.close()

    def integrity(self) -> str:
        """"ok", or what is wrong with the database's files: SQLite's integrity_check; on PostgreSQL, amcheck's
        check of every B-tree index of the schema against its table (it raises on a broken one)."""
        if not self.db_path.startswith("postgres"):
            return self.query("PRAGMA integrity_check")[0][0]
        import psycopg

        with psycopg.connect(self.db_path, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            indexes = conn.execute(
                "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.amname = 'btree' AND n.nspname = 'public'"
            ).fetchall()
            for (oid,) in indexes:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (oid,))
        return "ok" if indexes else "no indexes found"

    # -- API helpers ----------------------------------------------------------
    def client(self, annotator: str | None = None, token: str | None = None) -> Client:
        return Client(self.port, annotator=annotator, token=token)

    def create_project(self, client: Client, name: str, texts: list[str], **fields) -> int:
        status, body = client.post("/api/projects", {"name": name, "labels": ["ham", "spam"], **fields})
        assert status == 201, body
        project_id = body["id"]
        items = [{"id": f"{name}-{i}", "text": t} for i, t in enumerate(texts)]
        status, body = client.post(f"/api/projects/{project_id}/items", items)
        assert status == 200 and body["imported"] == len(texts), body
        return project_id

    def export(self, client: Client, project_id: int, every: bool = True) -> list[dict]:
        path = f"/api/projects/{project_id}/export?format=jsonl" + ("&annotations=all" if every else "")
        status, text = client.get(path)
        assert status == 200, text
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def assay_server(tmp_path, make_database):
    """A factory: ``assay_server(env={...})`` starts a server; every one started is stopped afterwards."""
    servers: list[AssayServer] = []

    def make(env: dict | None = None, threads: int = 8, start: bool = True, name: str = "instance") -> AssayServer:
        root = tmp_path / f"{name}{len(servers)}"
        server = AssayServer(root, env=env, threads=threads, database=make_database(root))
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def texts():
    return sms_texts


@pytest.fixture(scope="session")
def team_kit():
    """The server class and helpers, for module-scoped fixtures (test files cannot import a conftest by name
    reliably: other test folders have their own conftest.py)."""
    return SimpleNamespace(AssayServer=AssayServer, Client=Client, sms_texts=sms_texts)
