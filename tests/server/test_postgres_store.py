"""The PostgreSQL store: its migrations against SQLite's, its statement translation, and the locks that
stand in for SQLite's one writer when several processes share a database (run with ``--postgres``)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from assay import store
from assay.domain import serving
from assay.errors import Conflict
from assay.store import migrations, migrations_pg
from assay.store.postgres import translate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def pg(postgres):
    if postgres is None:
        pytest.skip("needs PostgreSQL: run with --postgres (or ASSAY_TEST_POSTGRES)")
    return postgres


@pytest.fixture
def handles(pg):
    """Two handles on one fresh PostgreSQL database: two writer connections, as two processes have."""
    url = pg.create()
    made = [store.connect(url), store.connect(url)]
    yield made
    for handle in made:
        handle.close()
    pg.drop(url)


# -- migrations --------------------------------------------------------------------------------------------

def test_both_engines_list_the_same_migrations_in_the_same_order():
    assert [name for name, _ in migrations_pg.MIGRATIONS] == [name for name, _ in migrations.MIGRATIONS]


PG_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


def _sqlite_schema(path) -> tuple[dict, set]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'")]
        columns = {t: [(c[1], PG_TYPES[c[2].upper()], bool(c[3] or c[5]))
                       for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                              " AND name NOT LIKE 'sqlite_autoindex_%'")}
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        conn.close()
    return columns, indexes | {("trigger", t) for t in triggers}


def _pg_schema(url) -> tuple[dict, set]:
    import psycopg

    with psycopg.connect(url) as conn:
        columns: dict = {}
        for table, column, kind, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append((column, kind, nullable == "NO"))
        # Indexes made by PRIMARY KEY and UNIQUE constraints are named by PostgreSQL (SQLite's autoindexes).
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT IN"
            " (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))")}
        triggers = {r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal")}
    return columns, indexes | {("trigger", t) for t in triggers}


def test_both_engines_make_the_same_tables_columns_indexes_and_triggers(pg, tmp_path):
    sqlite_db = store.connect(str(tmp_path / "schema.sqlite"))
    sqlite_db.migrate()
    sqlite_db.close()
    url = pg.create(empty=True)
    try:
        handle = store.connect(url)
        assert [n for n, _ in migrations_pg.MIGRATIONS] == handle.migrate()
        handle.close()
        sqlite_columns, sqlite_rest = _sqlite_schema(str(tmp_path / "schema.sqlite"))
        pg_columns, pg_rest = _pg_schema(url)
    finally:
        pg.drop(url)
    assert sorted(pg_columns) == sorted(sqlite_columns)
    for table, columns in sqlite_columns.items():
        assert pg_columns[table] == columns, table
    assert pg_rest == sqlite_rest


def test_init_db_migrates_an_empty_postgresql_database_once(pg, tmp_path):
    url = pg.create(empty=True)
    env = {**os.environ, "ASSAY_DATABASE": url, "ASSAY_INSTANCE_PATH": str(tmp_path / "instance")}
    try:
        runs = [subprocess.run([sys.executable, "-m", "assay.cli", "init-db"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=180) for _ in range(2)]
        handle = store.open_readonly(url)
        recorded = [r[0] for r in handle.reader.execute("SELECT name FROM migrations ORDER BY id")]
        handle.close()
    finally:
        pg.drop(url)
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert recorded == [name for name, _ in migrations_pg.MIGRATIONS]
    assert "up to date" in runs[1].stdout and "assay_" in runs[1].stdout


# -- translation ---------------------------------------------------------------------------------------------

def test_placeholders_become_psycopg_s_and_literals_stay_as_written():
    sql = translate("SELECT a FROM t WHERE b = ? AND c LIKE '50%?' AND d = :now AND e::text = 'x:y'").sql
    assert sql == "SELECT a FROM t WHERE b = %s AND c LIKE '50%%?' AND d = %(now)s AND e::text = 'x:y'"


def test_insert_or_ignore_and_lastrowid_have_their_postgresql_forms():
    assert translate("INSERT OR IGNORE INTO served (a) VALUES (?)").sql == \
        "INSERT INTO served (a) VALUES (%s) ON CONFLICT DO NOTHING"
    made = translate("INSERT INTO items (a) VALUES (?)")
    assert made.returns_id and made.sql.endswith(" RETURNING id")
    assert not translate("INSERT INTO items (a) VALUES (?)", many=True).returns_id
    assert "strftime" not in translate("UPDATE t SET at = strftime('%Y-%m-%dT%H:%M:%fZ','now')").sql
    with pytest.raises(ValueError, match="per dialect"):
        translate("INSERT OR REPLACE INTO servings (a) VALUES (?)")


def test_rows_read_like_sqlite_rows_and_times_read_alike(handles, tmp_path):
    db, _ = handles
    pid = store.create_project(db, {"name": "p", "labels": ["a", "b"], "multi_label": True})
    row = db.reader.execute("SELECT id, name, multi_label, created_at FROM projects").fetchone()
    assert row[0] == row["id"] == pid and dict(row)["name"] == "p" and row["multi_label"] == 1
    assert tuple(row)[:2] == (pid, "p")
    lite = store.connect(str(tmp_path / "t.sqlite"))
    lite.migrate()
    lite_pid = store.create_project(lite, {"name": "p", "labels": ["a"]})
    lite_at = store.get_project(lite, lite_pid)["created_at"]
    lite.close()
    # The same ISO text as SQLite's strftime: sortable, millisecond, UTC.
    assert len(row["created_at"]) == len(lite_at) and row["created_at"][-1] == lite_at[-1] == "Z"


# -- across processes ----------------------------------------------------------------------------------------

def _items(db, n, name="p", **fields) -> int:
    pid = store.create_project(db, {"name": name, "labels": ["ham", "spam"], **fields})
    store.insert_items(db, pid, [(str(i), {"text": f"text {i}"}, None) for i in range(n)])
    return pid


def test_a_queue_pull_holds_the_project_against_another_process_s_answer(handles):
    one, two = handles
    pid = _items(one, 4)
    project = store.get_project(one, pid)
    answered = threading.Event()
    outcome = []

    def answer():
        try:
            store.add_annotation(two, pid, 1, "bob", "ham", False, overlap=1)
            outcome.append("stored")
        except Conflict as exc:
            outcome.append(exc.message)
        answered.set()

    with one.write() as tx:
        store.expire_leases(tx, pid, time.time())  # a pull has begun: it holds the project
        thread = threading.Thread(target=answer)
        thread.start()
        assert not answered.wait(0.5), "an answer went through while another process's pull decided on leases"
        store.lease_items(tx, pid, "ana", [1], time.time() + 600)
    thread.join(10)
    # It waited for the pull, then saw ana's lease and refused bob (409), instead of both holding item 1.
    assert not thread.is_alive() and len(outcome) == 1 and "reserved for another annotator" in outcome[0]
    assert serving.pull_queue(one, project, "ana", 1, 600)[0]["id"] == 1


def test_pulls_of_two_processes_never_lease_one_item_twice(handles):
    dbs = handles
    pid = _items(dbs[0], 60)
    project = store.get_project(dbs[0], pid)
    served: dict[str, list[int]] = {}
    errors = []

    def annotate(db, name):
        try:
            mine = served.setdefault(name, [])
            while True:
                items = serving.pull_queue(db, project, name, 3, 600)
                if not items:
                    return
                for item in items:
                    mine.append(item["id"])
                    store.add_annotation(db, pid, item["id"], name, "ham", False, overlap=1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=annotate, args=(dbs[k % 2], f"a{k}")) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    every = [i for ids in served.values() for i in ids]
    assert len(every) == len(set(every)) == 60, "an item was served to two annotators"
    assert store.counts(dbs[0], pid)["labeled"] == 60


def test_a_job_claimed_in_one_process_is_passed_over_by_another(handles):
    one, two = handles
    a, b = _items(one, 1, "a"), _items(one, 1, "b")
    first, second = store.enqueue_job(one, a), store.enqueue_job(one, b)
    got = {}
    with one.write() as tx:
        got["one"] = store.claim_job(tx, "w1", 60.0)
        thread = threading.Thread(target=lambda: got.update(two=_claim(two, "w2")))
        thread.start()
        thread.join(5)  # SKIP LOCKED: the other claimer does not wait for this transaction
        assert not thread.is_alive(), "the second claimer waited for the first one's row"
    assert got["one"]["id"] == first and got["two"]["id"] == second


def _claim(db, worker):
    with db.write() as tx:
        return store.claim_job(tx, worker, 60.0)


def test_a_delivery_claimed_in_one_process_is_not_claimed_by_another(handles):
    one, two = handles
    pid = _items(one, 1)
    hook = store.create_webhook(one, pid, "http://127.0.0.1:9/hook", ["annotation.created"], "s3cret")
    with one.write() as tx:
        store.add_deliveries(tx, [{"hook_id": hook, "project_id": pid, "event": "annotation.created",
                                   "delivery_id": f"d{k}", "body": "{}", "next_attempt_at": 0.0} for k in range(4)])
    results = []
    barrier = threading.Barrier(2)

    def claim(db):
        barrier.wait()
        results.append([d["delivery_id"] for d in store.claim_deliveries(db, time.time(), 60.0)])

    threads = [threading.Thread(target=claim, args=(db,)) for db in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    claimed = [d for r in results for d in r]
    assert sorted(claimed) == [f"d{k}" for k in range(4)], results


def test_the_writer_commits_durably_whatever_the_server_s_default(handles, pg):
    one, _ = handles
    name = one.path.rsplit("/", 1)[1]
    pg.admin.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")  # for the connections made from now
    assert one.reader.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    with one.write() as tx:
        assert tx.execute("SHOW synchronous_commit").fetchone()[0] == "on"


def test_an_acknowledged_label_is_visible_to_a_new_connection_at_once(handles, pg):
    one, _ = handles
    pid = _items(one, 2)
    annotation, created = store.add_annotation(one, pid, 1, "ana", "spam", False)
    fresh = store.open_readonly(one.path)
    try:
        rows = fresh.reader.execute("SELECT label FROM annotations WHERE id = ?", (annotation["id"],)).fetchall()
    finally:
        fresh.close()
    assert created and [r[0] for r in rows] == ['"spam"']


@pytest.mark.parametrize("kind", ["project", "user"])
def test_a_name_taken_by_another_process_after_the_check_is_a_conflict(handles, kind):
    """PostgreSQL's writers run side by side: another process's INSERT of the same name, not yet committed,
    passes this one's check, and this one's INSERT then fails on the unique index. That is a 409 with the
    usual message, not a 500."""
    one, two = handles
    outcome = []

    def create():
        try:
            if kind == "project":
                store.create_project(two, {"name": "race", "labels": ["a", "b"]})
            else:
                store.create_user(two, "race", None)
            outcome.append("created")
        except Conflict as exc:
            outcome.append(exc.message)
        except Exception as exc:  # noqa: BLE001 - the failure this test is about
            outcome.append(repr(exc))

    with one.write() as tx:
        if kind == "project":
            tx.execute("INSERT INTO projects (name, labels) VALUES (?, ?)", ("race", '["a", "b"]'))
        else:
            tx.execute("INSERT INTO users (name) VALUES (?)", ("race",))
        thread = threading.Thread(target=create)
        thread.start()
        time.sleep(0.5)  # the other's check found no row; its INSERT now waits on the unique index
    thread.join(10)
    expected = ("a project named 'race' already exists; pick another name" if kind == "project"
                else "a user named 'race' already exists")
    assert outcome == [expected]
