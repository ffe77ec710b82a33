"""The PostgreSQL database (``ASSAY_DATABASE=postgresql://user@host:port/db``): the same handle as the SQLite
:class:`~assay.store.db.Database`, so the store's modules run on either.

The store's statements are written once, in SQLite's SQL. :class:`Connection` wraps a psycopg connection
and translates the few differences at this one place (cached per statement): ``?`` and ``:name``
placeholders, ``INSERT OR IGNORE``, SQLite's ISO ``strftime`` timestamp, and ``lastrowid`` (an ``INSERT``
into a table with an ``id`` gets ``RETURNING id``). Rows index by position and by name like
``sqlite3.Row``. A statement that means something else on PostgreSQL (``INSERT OR REPLACE``, ``json_each``,
a Python function, row locks) is written per dialect in its store module, which asks :func:`dialect`.

Writes: one connection per process, guarded by a lock, ``BEGIN … COMMIT`` per ``db.write()``. The writer
sets ``synchronous_commit=on`` for its session, whatever the server's default: a COMMIT has then reached the
server's WAL on disk when it returns, so an acknowledged label is durable as on SQLite. Reads: one autocommit
connection per thread.

Across processes (several ``assay serve`` and ``assay worker`` on one database) SQLite's ``BEGIN IMMEDIATE``
serialized every write; PostgreSQL runs them side by side under READ COMMITTED, so the writes whose reads
decide what they write take locks:

- a queue pull, an answer, an undo, a lease release and a queue replacement take the project's
  transaction-level advisory lock (:func:`lock_project`, ``pg_advisory_xact_lock(project_id)``). Chosen over
  row locks because what must not happen is a decision on rows that do not exist yet (two processes each
  find the same item unleased and both insert a lease: ``SELECT … FOR UPDATE`` cannot lock the absent
  lease), and one lock per project costs what SQLite's one lock per database cost, only narrower;
- job claims and webhook delivery claims take the rows they claim with ``FOR UPDATE SKIP LOCKED``, so two
  claimers pass each other instead of waiting or taking the same row (store.jobs, store.webhooks);
- migrations run under one advisory lock, so two processes starting at once apply each migration once.
"""
from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from .handle import Handle
from .migrations_pg import NOW_ISO

# SQLite's ISO-8601 UTC timestamp with milliseconds, rewritten to NOW_ISO (the same text comes out).
SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

# The tables whose rows have an ``id`` the caller may want back (cursor.lastrowid).
ID_TABLES = frozenset({"projects", "items", "annotations", "model_versions", "users", "tokens", "imports",
                       "webhooks", "webhook_outbox", "webhook_attempts", "jobs", "migrations"})
MIGRATION_LOCK = -1  # the advisory lock key of migrations; project locks use the (positive) project id

_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)", re.IGNORECASE)
_TOKENS = re.compile(r"('(?:[^']|'')*'|\"[^\"]*\")")  # string literals and quoted names: left as they are
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def is_url(setting: str) -> bool:
    return urlsplit(str(setting)).scheme.split("+")[0] in ("postgresql", "postgres") if "://" in str(setting) \
        else False


# The parameters of a libpq URL's query that carry a secret (libpq reads ``?password=`` as the password, and
# decodes %-escapes in names too, so ``?pass%77ord=`` is one as well).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def redacted(url) -> str:
    """The URL without its secrets (the password of its user part and of its query): what logs and messages
    may show. Every message that names the database goes through here."""
    url = str(url)
    if not is_url(url):
        return url  # a SQLite file's path, as it is
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(an ASSAY_DATABASE URL that cannot be parsed)"
    netloc = parts.netloc
    if password is not None:
        netloc = f"{parts.username}:***@{netloc.rsplit('@', 1)[-1]}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if unquote_plus(pair.split("=", 1)[0]).strip().lower() in SECRET_PARAMETERS
        else pair for pair in parts.query.split("&")) if parts.query else ""
    # The fragment carries nothing libpq reads, but nothing a message needs either.
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=""))


def secrets_of(url) -> list[str]:
    """The passwords a URL carries (as written and %-decoded), for :func:`scrubbed`."""
    try:
        parts = urlsplit(str(url))
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if value and unquote_plus(key).strip().lower() in SECRET_PARAMETERS:
            found.append(value)
    return [v for s in found for v in {s, unquote_plus(s)} if v]


def scrubbed(text: str, url) -> str:
    """``text`` (a driver's message about ``url``) with every secret of the URL replaced by ``***``."""
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://`` and ``postgres://`` as libpq takes them."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


class Statement:
    __slots__ = ("sql", "returns_id")

    def __init__(self, sql: str, returns_id: bool):
        self.sql = sql
        self.returns_id = returns_id


_cache: dict[tuple[str, bool], Statement] = {}


def translate(sql: str, many: bool = False) -> Statement:
    """The PostgreSQL form of one of the store's SQLite statements."""
    key = (sql, many)
    found = _cache.get(key)
    if found is not None:
        return found
    text = sql.replace(SQLITE_NOW, NOW_ISO)
    match = _INSERT.match(text)
    conflict = ""
    returns_id = False
    if match:
        if match.group(2) and match.group(2).upper() == "REPLACE":
            raise ValueError("INSERT OR REPLACE has no PostgreSQL translation: write the upsert per dialect "
                             f"in the store module ({sql[:80]!r})")
        if match.group(1):
            text = text[:match.start(1)] + text[match.end(1):]
            conflict = " ON CONFLICT DO NOTHING"
        returns_id = (not many and match.group(3).lower() in ID_TABLES and "RETURNING" not in text.upper())
    parts = _TOKENS.split(text)
    for i in range(0, len(parts), 2):  # the even parts are outside literals
        part = parts[i].replace("%", "%%").replace("?", "%s")
        parts[i] = _NAMED.sub(r"%(\1)s", part)
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%")
    text = "".join(parts).rstrip().rstrip(";") + conflict + (" RETURNING id" if returns_id else "")
    statement = Statement(text, returns_id)
    if len(_cache) < 4096:
        _cache[key] = statement
    return statement


class RowBase(tuple):
    """A result row like sqlite3.Row: by position, by column name, ``keys()``, ``dict(row)``."""

    __slots__ = ()
    _keys: tuple = ()
    _index: dict = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self):
        return list(self._keys)


_row_classes: dict[tuple, type] = {}


def _row_class(names: tuple) -> type:
    cls = _row_classes.get(names)
    if cls is None:
        cls = type("Row", (RowBase,), {"__slots__": (), "_keys": names,
                                       "_index": {n: i for i, n in reversed(list(enumerate(names)))}})
        _row_classes[names] = cls
    return cls


def _row_factory(cursor):
    if cursor.description is None:
        return tuple
    return _row_class(tuple(c.name for c in cursor.description))


def _params(params):
    # sqlite3 stores a bool as 0 or 1; the schema's flags are integers on PostgreSQL too.
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


class Cursor:
    """What ``Connection.execute`` returns: iterate it, ``fetchone``/``fetchall``, ``rowcount``, ``lastrowid``."""

    __slots__ = ("_cur", "rowcount", "lastrowid")

    def __init__(self, cur, returns_id: bool):
        self._cur = cur
        self.rowcount = cur.rowcount
        self.lastrowid = None
        if returns_id:
            row = cur.fetchone()
            self.lastrowid = row[0] if row else None

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self):
        return self._cur.fetchall()

    def __iter__(self):
        return iter(self._cur)


class Connection:
    """A psycopg connection that takes the store's SQLite statements (see the module docstring)."""

    dialect = "postgresql"

    def __init__(self, raw):
        self.raw = raw
        self.in_transaction = False

    def execute(self, sql: str, params=()) -> Cursor:
        statement = translate(sql)
        cur = self.raw.cursor(row_factory=_row_factory)
        cur.execute(statement.sql, _params(params))
        return Cursor(cur, statement.returns_id)

    def executemany(self, sql: str, seq) -> None:
        rows = [_params(p) for p in seq]
        if rows:
            self.raw.cursor().executemany(translate(sql, many=True).sql, rows)

    def close(self) -> None:
        self.raw.close()


def _connect(url: str, *, autocommit: bool, readonly: bool = False) -> Connection:
    import psycopg

    raw = psycopg.connect(libpq_url(url), autocommit=autocommit, application_name="assay")
    if readonly:
        raw.execute("SET default_transaction_read_only = on")
    else:  # a server configured with synchronous_commit=off would acknowledge labels it can still lose
        raw.execute("SET synchronous_commit = on")
        raw.commit()
    return Connection(raw)


def lock_project(tx, project_id: int) -> None:
    """Inside an open write on PostgreSQL: hold the project's lock until the transaction ends."""
    tx.execute("SELECT pg_advisory_xact_lock(?)", (int(project_id),))


class PostgresDatabase(Handle):
    """One PostgreSQL database: per-thread readers and one serialized writer, like the SQLite Database."""

    dialect = "postgresql"

    def __init__(self, url: str):
        super().__init__()
        self.path = url  # what a worker process opens again (store.open_readonly), as with a SQLite file

    def _open_reader(self) -> Connection:
        return _connect(self.path, autocommit=True, readonly=True)

    def _open_writer(self) -> Connection:
        return _connect(self.path, autocommit=False)

    def _usable(self, conn: Connection) -> bool:
        return not (conn.raw.closed or conn.raw.broken)  # a server restart breaks it: connect again

    def _begin(self, conn: Connection) -> None:
        conn.in_transaction = True  # psycopg opens the transaction at the first statement

    def _end(self, conn: Connection, commit: bool) -> None:
        try:
            if commit:
                conn.raw.commit()
            else:
                with contextlib.suppress(Exception):
                    conn.raw.rollback()
        finally:
            conn.in_transaction = False

    def _apply_migrations(self) -> list[str]:
        """The migrations not yet recorded in the database, in their PostgreSQL forms."""
        import psycopg

        from assay.errors import ConfigurationError

        from .migrations_pg import MIGRATIONS

        with self._write_lock:  # migrate runs first at start-up: an unreachable server is a setting to fix
            try:
                if self._writer is None or not self._usable(self._writer):
                    self._writer = self._open_writer()
            except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # Programming: a malformed URL
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                reason = scrubbed(reason, self.path)  # libpq quotes a malformed value: it may be the password
                raise ConfigurationError(
                    f"ASSAY_DATABASE names PostgreSQL at {redacted(self.path)}, which cannot be reached ({reason}): "
                    "check the URL, that the server runs, and that the database exists (createdb)") from None
        applied = []
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations ("
                " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                f" applied_at TEXT NOT NULL DEFAULT ({NOW_ISO}))"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                fn(conn)
                conn.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
                applied.append(name)
        return applied


class PostgresReadOnly:
    """One read-only connection for another process (the retrain worker), like db.ReadOnlyDatabase."""

    dialect = "postgresql"

    def __init__(self, url: str):
        self.path = url
        self.reader = _connect(url, autocommit=True, readonly=True)

    def close(self) -> None:
        self.reader.close()


def database_name(conn: Connection) -> str:
    """The server and database a connection reads, without credentials: a key for caches."""
    info = conn.raw.info
    return f"postgresql://{info.host}:{info.port}/{info.dbname}"
