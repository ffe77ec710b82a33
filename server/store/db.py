"""The SQLite database: connections, the single writer, and recorded migrations.

Reads use one connection per thread. Every write goes through one connection
guarded by a lock, inside a transaction, so writes are serialized and a label
is acknowledged only after its COMMIT returned. WAL mode lets readers (request
threads and the retrain worker process) proceed while the writer commits.
"""
from __future__ import annotations

import os
import sqlite3
import time


from .handle import Handle
from .migrations import MIGRATIONS

# FULL makes each commit durable against power loss as well as a killed process;
# in WAL mode it costs one fsync of the log per transaction.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA query_only=ON")
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        for pragma in PRAGMAS:
            conn.execute(pragma)
    conn.row_factory = sqlite3.Row
    return conn


def database_setting(setting: str) -> str:
    """What the ``DATABASE`` setting (``ASSAY_DATABASE``) names: a SQLite file path, or a PostgreSQL URL.

    A plain path, a ``sqlite:///relative`` / ``sqlite:////absolute`` URL, or ``postgresql://user@host:port/db``
    (also ``postgres://`` and ``postgresql+psycopg://``). Any other URL is refused with what to do: a value
    like ``mysql://…`` would otherwise become a SQLite file in a folder named ``mysql:``.
    """
    from urllib.parse import urlsplit

    from assay.errors import ConfigurationError

    value = os.fspath(setting)
    scheme = urlsplit(value).scheme if "://" in value else ""
    if not scheme:
        return value
    if scheme == "sqlite":
        path = value[len("sqlite://"):]
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ConfigurationError("ASSAY_DATABASE=sqlite:// names no file: use sqlite:///relative/path.sqlite, "
                                     "sqlite:////absolute/path.sqlite or a plain file path")
        return path
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigurationError("ASSAY_DATABASE names PostgreSQL, and psycopg is not installed: "
                                     "pip install 'assay[postgres]'") from None
        if not urlsplit(value).path.strip("/"):
            raise ConfigurationError("ASSAY_DATABASE names no PostgreSQL database: "
                                     "use postgresql://user@host:port/database")
        return value
    raise ConfigurationError(f"ASSAY_DATABASE names the engine {scheme!r}, which Assay does not support: set it to "
                             "a SQLite file path (or sqlite:///path), a postgresql://user@host:port/database URL, "
                             "or leave it unset for instance/assay.sqlite")


def database_path(setting: str) -> str:
    """The SQLite file the ``DATABASE`` setting names; a PostgreSQL URL is refused (it names no file)."""
    from assay.errors import ConfigurationError

    from .postgres import is_url

    value = database_setting(setting)
    if is_url(value):
        raise ConfigurationError("ASSAY_DATABASE names PostgreSQL, not a SQLite file path")
    return value


def connect(setting: str):
    """The store handle for a ``DATABASE`` setting: a :class:`Database` on a SQLite file, or a
    :class:`~assay.store.postgres.PostgresDatabase` on a PostgreSQL URL."""
    from .postgres import PostgresDatabase, is_url

    value = database_setting(setting)
    return PostgresDatabase(value) if is_url(value) else Database(value)


class Database(Handle):
    """One SQLite file: per-thread readers and one serialized writer."""

    dialect = "sqlite"

    def __init__(self, path: str):
        super().__init__()
        self.path = os.path.abspath(path)
        # The file holds password and token hashes and webhook secrets: a new one (and a folder made for it) is
        # its owner's alone, whatever the umask lets others read. SQLite gives the -wal and -shm files the
        # database file's mode. An existing file keeps the mode the operator gave it.
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # empty: a new database
        except FileExistsError:
            pass

    def _open_reader(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        return _connect(self.path)

    def _begin(self, conn) -> None:
        # BEGIN IMMEDIATE takes SQLite's write lock up front, so the transaction
        # cannot fail half-way for another process holding it (the worker's cache).
        conn.execute("BEGIN IMMEDIATE")

    def _end(self, conn, commit: bool) -> None:
        conn.execute("COMMIT" if commit else "ROLLBACK")

    # -- schema -------------------------------------------------------------
    def _apply_migrations(self) -> list[str]:
        applied = []
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations ("
                " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                import sqlite_utils  # only here: it imports pandas (a second of CPU for every command)

                fn(sqlite_utils.Database(conn))
                conn.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
                applied.append(name)
        return applied


class ReadOnlyDatabase:
    """One read-only connection for another process (the retrain worker); store reads take it like a Database."""

    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.reader = _connect(self.path, readonly=True)

    def close(self) -> None:
        self.reader.close()


def open_readonly(path: str):
    """A read-only handle on a SQLite file or a PostgreSQL URL (what a handle's ``path`` holds)."""
    from .postgres import PostgresReadOnly, is_url

    return PostgresReadOnly(path) if is_url(path) else ReadOnlyDatabase(path)


def reading(source) -> sqlite3.Connection:
    """The connection a read goes through: a handle's reader, or the open transaction it was given.

    Callers outside the store pass the handle (Database, ReadOnlyDatabase); store functions pass
    the connection of the write they run in, so the read sees that transaction's own changes.
    """
    return source if isinstance(source, sqlite3.Connection) or hasattr(source, "raw") else source.reader


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a statement failed on a UNIQUE index, on either engine: a name checked free, then taken by
    another process before the INSERT (PostgreSQL's writers run side by side; SQLite's never do)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    return getattr(exc, "sqlstate", None) == "23505"


def dialect(source) -> str:
    """``sqlite`` or ``postgresql``: which SQL a handle or a transaction takes, where the two differ."""
    return getattr(source, "dialect", "sqlite")


def lock_project(tx, project_id: int) -> None:
    """Inside an open write: no other process's write that also locks the project runs until this one ends.

    SQLite's BEGIN IMMEDIATE already holds the whole database; on PostgreSQL it is the project's
    advisory lock (see assay.store.postgres).
    """
    if dialect(tx) == "postgresql":
        from .postgres import lock_project as lock

        lock(tx, project_id)


def database_file(source) -> str:
    """The file a handle reads (for PostgreSQL: the server and database): a key for caches of derived numbers."""
    conn = reading(source)
    if dialect(conn) == "postgresql":
        from .postgres import database_name

        return database_name(conn)
    return conn.execute("PRAGMA database_list").fetchone()[2]


MAX_VARIABLES = 900  # SQLite caps the bound parameters of one statement (999 before 3.32)


def in_chunks(values, size: int = MAX_VARIABLES):
    """(chunk, marks) over ``values``: ``marks`` is the ``?,?,...`` list for ``IN (...)`` of that chunk."""
    values = list(values)
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        yield chunk, ",".join("?" * len(chunk))


def politely(iterable, every: int = 32):
    """The items of ``iterable``, giving other threads the interpreter every ``every`` items.

    An import parses and checks rows in pure Python for seconds. A label posted
    meanwhile gives up the interpreter lock at each database call and would wait
    up to the switch interval (5 ms) to get it back each time, which adds up to
    tens of milliseconds; handing it over often keeps labels at their usual latency.
    """
    for n, item in enumerate(iterable, 1):
        if n % every == 0:
            time.sleep(0)
        yield item
