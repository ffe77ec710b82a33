"""A throwaway PostgreSQL cluster for the tests that run on both backends (``--postgres`` or
``ASSAY_TEST_POSTGRES``), and a fresh database per test cloned from a migrated template.

``ASSAY_TEST_POSTGRES=1`` (or ``--postgres``) starts a cluster in a temporary folder with the binaries of
``ASSAY_PG_BIN`` (default: the newest /usr/lib/postgresql/*/bin) and stops it at the end of the session (each
pytest-xdist worker is a session: it starts its own cluster, in its own folder, on its own port);
``ASSAY_TEST_POSTGRES=postgresql://user@host:port/db`` uses a server that is already running instead (its
user must be allowed to create databases). ``initdb`` refuses to run as root, so as root the cluster runs as
the ``postgres`` user (``runuser``).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

TEMPLATE = f"assay_template_{os.getpid()}"  # one per session (each pytest-xdist worker's): they may share a server


def _bin_dir() -> str:
    if os.environ.get("ASSAY_PG_BIN"):
        return os.environ["ASSAY_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("no PostgreSQL binaries found: install postgresql, or set ASSAY_PG_BIN to the folder of initdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl on a temporary folder; ``url`` reaches its ``postgres`` database over TCP."""

    def __init__(self, durable: bool = False):
        self.durable = durable  # benchmarks measure PostgreSQL as it runs in production: fsync on
        self.bin = _bin_dir()
        self.root = tempfile.mkdtemp(prefix="assay-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o700)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")

    def start(self) -> "Cluster":
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        for attempt in range(5):
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300"
            if not self.durable:
                # The tests kill servers of Assay, never this cluster, so its own fsyncs buy nothing but time.
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            try:
                self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.root, "log"),
                          "-o", options, "-w", "start")
                return self
            except RuntimeError:
                # The free port was taken before the cluster bound it (pytest-xdist workers start their clusters
                # at the same time): another port.
                if attempt == 4 or "already in use" not in self._log():
                    raise
                self.port = _free_port()
                self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def _log(self) -> str:
        try:
            with open(os.path.join(self.root, "log"), errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Databases:
    """Fresh databases on one server, each a copy of a template that holds every migration."""

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.made: list[str] = []
        self.admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        self.admin.execute(f"CREATE DATABASE {TEMPLATE}")
        from assay import store

        db = store.connect(with_database(url, TEMPLATE))
        try:
            db.migrate()
        finally:
            db.close()

    def create(self, empty: bool = False) -> str:
        """A new database: a migrated one, or with ``empty`` one without any table."""
        name = f"assay_{uuid.uuid4().hex[:16]}"
        template = "template0" if empty else TEMPLATE
        for attempt in range(50):  # the template is busy while another clone of it is being made
            try:
                self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
                break
            except Exception as exc:  # psycopg.errors.ObjectInUse
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        self.made.append(name)
        return with_database(self.url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self.made:
            self.made.remove(name)

    def close(self) -> None:
        for name in list(self.made):
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        self.admin.close()
