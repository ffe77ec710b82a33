"""The engine-independent part of a database handle: per-thread readers, one serialized writer, and the
schema brought up to date before the first connection is used.

SQLite's handle (assay.store.db) and PostgreSQL's (assay.store.postgres) both build on it; it lives apart so
that neither engine's module imports the other's.
"""
from __future__ import annotations

import contextlib
import threading
import time


class Handle:
    """Per-thread readers and one serialized writer. The engines (SQLite in assay.store.db, PostgreSQL in
    assay.store.postgres) differ only in how they connect, how a transaction begins and ends, and their
    migrations.

    A handle applies the migrations not yet applied before its first connection is used (once: whoever
    builds an app, the CLI, a test, another WSGI server, finds the schema up to date); ``migrate()`` does it
    at once and says what it applied (`assay init-db`).
    """

    def __init__(self):
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._waiting = 0  # threads queued for the writer
        self._waiting_lock = threading.Lock()
        self._writer = None
        self._readers: list = []
        self._readers_lock = threading.Lock()
        self._schema_lock = threading.Lock()
        self._schema_checked = False

    # what each engine supplies
    def _open_reader(self):
        raise NotImplementedError

    def _open_writer(self):
        raise NotImplementedError

    def _usable(self, conn) -> bool:
        return True

    def _begin(self, conn) -> None:
        raise NotImplementedError

    def _end(self, conn, commit: bool) -> None:
        raise NotImplementedError

    def _apply_migrations(self) -> list[str]:
        """The migrations not yet recorded, applied through ``_transaction`` (never ``write``); their names."""
        raise NotImplementedError

    # -- schema ---------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded in the database; returns their names."""
        with self._schema_lock:
            applied = self._apply_migrations()
            self._schema_checked = True
        return applied

    def _check_schema(self) -> None:
        if not self._schema_checked:
            with self._schema_lock:  # other threads wait here until the first one has migrated
                if not self._schema_checked:
                    self._apply_migrations()
                    self._schema_checked = True

    # -- connections ------------------------------------------------------
    @property
    def reader(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or not self._usable(conn):
            self._check_schema()
            conn = self._open_reader()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self):
        """A serialized write transaction: ``with db.write() as tx: tx.execute(...)``, committed when the
        block ends (an acknowledged write is durable), rolled back if it raises."""
        self._check_schema()
        with self._transaction() as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self):
        """``write`` without the schema check: what the migrations themselves run in."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._write_lock.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            if self._writer is None or not self._usable(self._writer):
                self._writer = self._open_writer()
            conn = self._writer
            if conn.in_transaction:  # nested call from inside a write: join it
                yield conn
                return
            self._begin(conn)
            try:
                yield conn
            except BaseException:
                self._end(conn, commit=False)
                raise
            self._end(conn, commit=True)
        finally:
            self._write_lock.release()

    def let_others_write(self, timeout: float = 1.0) -> None:
        """Between the chunks of a long write: let writes already queued go first.

        The lock is not fair: a thread releasing it and taking it again at once
        would starve everyone queued behind it, so a label would wait for the
        whole import instead of one chunk.
        """
        deadline = time.monotonic() + timeout
        while self._waiting and time.monotonic() < deadline:
            time.sleep(0.0005)

    def close(self):
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(Exception):
                    conn.close()
            self._readers.clear()
        self._local = threading.local()
        with self._write_lock:
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    self._writer.close()
                self._writer = None
