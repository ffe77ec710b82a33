"""Every SQL statement of Assay lives here.

Reads take a connection (a thread's reader, or the worker's read-only one);
writes take the :class:`~server.db.Database` and run inside ``db.write()``.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections import Counter
from typing import Iterator

from .db import Database, politely
from assay.errors import BadRequest, Conflict, NotFound

PROJECT_FIELDS = ("name", "labels", "multi_label", "item_type", "strategy", "strategy_params", "model",
                  "model_params", "featurizer", "batch_size", "retrain_every", "overlap", "keys", "audit_share",
                  "target_accuracy")
JSON_FIELDS = ("labels", "strategy_params", "model_params", "keys")
SHUFFLE_RANGE = 2**62


# -- projects ---------------------------------------------------------------

def _project_values(fields: dict) -> dict:
    # A JSON field set to None is stored as NULL (keys: the default), not as the text "null".
    return {k: (json.dumps(v) if k in JSON_FIELDS and v is not None else v)
            for k, v in fields.items() if k in PROJECT_FIELDS}


def _project_row(row: sqlite3.Row) -> dict:
    project = dict(row)
    for key in JSON_FIELDS:
        project[key] = json.loads(project[key]) if project[key] is not None else None
    project["multi_label"] = bool(project["multi_label"])
    return project


def create_project(db: Database, fields: dict) -> int:
    values = _project_values(fields)
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM projects WHERE name = ?", (fields["name"],)).fetchone():
            raise Conflict(f"a project named {fields['name']!r} already exists; pick another name")
        cur = conn.execute(f"INSERT INTO projects ({columns}) VALUES ({marks})", tuple(values.values()))
        return cur.lastrowid


def update_project(db: Database, project_id: int, fields: dict) -> None:
    values = _project_values(fields)
    if not values:
        return
    assignments = ", ".join(f"{k} = ?" for k in values)
    with db.write() as conn:
        conn.execute(f"UPDATE projects SET {assignments} WHERE id = ?", (*values.values(), project_id))


def delete_project(db: Database, project_id: int, chunk: int = 2000) -> dict:
    """Delete a project with its items, answers, queue, leases and model versions; returns what went.

    Items go in chunks, each its own transaction, so labels posted to other
    projects meanwhile never wait long for the writer. A crash part-way leaves
    the project with fewer items, and deleting it again finishes the job.
    """
    gone = counts(db.reader, project_id)
    while True:
        with db.write() as conn:
            cur = conn.execute("DELETE FROM items WHERE id IN (SELECT id FROM items WHERE project_id = ? LIMIT ?)",
                               (project_id, chunk))
            if cur.rowcount == 0:
                conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))
                return gone


def get_project(conn: sqlite3.Connection, key) -> dict:
    """A project by id or by name."""
    row = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        if int(key) < 2**63:
            row = conn.execute("SELECT * FROM projects WHERE id = ?", (int(key),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM projects WHERE name = ?", (str(key),)).fetchone()
    if row is None:
        raise NotFound(f"no project {key!r}; `assay create-project` or POST /api/projects makes one")
    return _project_row(row)


def list_projects(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(
        """
        SELECT p.*,
               coalesce(c.items, 0) AS n_items, coalesce(c.labeled, 0) AS n_labeled
        FROM projects p LEFT JOIN project_counts c ON c.project_id = p.id ORDER BY p.id
        """
    ).fetchall()
    out = []
    for row in rows:
        project = _project_row(row)
        out.append(project)
    return out


# -- items ------------------------------------------------------------------

def existing_external_ids(conn: sqlite3.Connection, project_id: int) -> set[str]:
    rows = conn.execute("SELECT external_id FROM items WHERE project_id = ? AND external_id IS NOT NULL",
                        (project_id,))
    return {r[0] for r in rows}


IMPORT_CHUNK = 500  # rows per write transaction: a label waits for one chunk, not the whole file


def insert_items(db: Database, project_id: int, rows: list[tuple[str | None, dict, object]],
                 seed_annotator: str = "import", progress=None, chunk: int = IMPORT_CHUNK) -> tuple[int, int]:
    """Insert validated (external_id, data, label-or-None) rows, IMPORT_CHUNK rows per transaction.

    Rows whose external id is already in the project (or earlier in the same
    batch) are skipped, so re-importing a file is harmless. Returns (imported, skipped).

    Items of a running import are visible (they can be pulled and labeled) as
    soon as their chunk commits. If the import fails half-way its items are
    deleted again; if the process dies half-way they are deleted at the next
    start (discard_dead_imports), together with any answers given on them.
    """
    import_id = _begin_import(db, project_id)
    imported = skipped = 0
    rng = random.Random()
    try:
        for start in range(0, len(rows), chunk):
            db.let_others_write()
            with db.write() as conn:
                for external_id, data, label in politely(rows[start:start + chunk]):
                    cur = conn.execute(
                        "INSERT INTO items (project_id, external_id, data, shuffle, import_id) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (project_id, external_id) DO NOTHING",
                        (project_id, external_id, json.dumps(data, ensure_ascii=False),
                         rng.randrange(SHUFFLE_RANGE), import_id),
                    )
                    if not cur.rowcount:
                        skipped += 1
                        continue
                    if label is not None:
                        _insert_annotation(conn, project_id, cur.lastrowid, seed_annotator, label, False,
                                           source="import")
                    imported += 1
            if progress is not None:
                progress(len(rows[start:start + chunk]))
    except BaseException:
        _discard_import(db, import_id)
        raise
    with db.write() as conn:
        conn.execute("UPDATE imports SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
                     (import_id,))
    return imported, skipped


def delete_items(db: Database, project_id: int, item_ids: list[int], *, with_labels: bool = False) -> dict:
    """Delete items of one project in one transaction: all of them, or none.

    Items that carry live labels are deleted only ``with_labels``: an
    acknowledged label is never dropped by accident.
    """
    item_ids = sorted(set(item_ids))
    with db.write() as conn:
        found, labeled = set(), 0
        for chunk in _chunks(item_ids):
            marks = ",".join("?" * len(chunk))
            for item_id, n_labels in conn.execute(
                    f"SELECT id, n_labels FROM items WHERE project_id = ? AND id IN ({marks})", (project_id, *chunk)):
                found.add(item_id)
                labeled += n_labels > 0
        missing = [i for i in item_ids if i not in found]
        if missing:
            raise NotFound(f"project {project_id} has no item(s) {missing[:10]}; nothing was deleted")
        if labeled and not with_labels:
            raise Conflict(f"{labeled} of these items carry labels; nothing was deleted. Export them first if "
                           "you need them, then delete with_labels=true (CLI: --with-labels)")
        for chunk in _chunks(item_ids):
            conn.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return {"deleted": len(item_ids), "labeled": labeled}


def _chunks(values: list, size: int = 900):
    # SQLite caps the number of bound parameters per statement.
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _begin_import(db: Database, project_id: int) -> int:
    with db.write() as conn:
        return conn.execute("INSERT INTO imports (project_id, pid) VALUES (?, ?)",
                            (project_id, os.getpid())).lastrowid


def _discard_import(db: Database, import_id: int, chunk: int = IMPORT_CHUNK) -> None:
    """Delete an unfinished import's items (and, by cascade, answers on them), a chunk at a time."""
    while True:
        with db.write() as conn:
            gone = conn.execute("DELETE FROM items WHERE id IN (SELECT id FROM items WHERE import_id = ? LIMIT ?)",
                                (import_id, chunk)).rowcount
            if not gone:
                conn.execute("DELETE FROM imports WHERE id = ?", (import_id,))
                return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discard_dead_imports(db: Database) -> int:
    """Undo imports whose process died before they finished (a file imports whole or not at all)."""
    rows = db.reader.execute("SELECT id, pid FROM imports WHERE finished_at IS NULL").fetchall()
    # Our own pid at start-up is a previous run's (containers restart with the same small pids).
    dead = [r[0] for r in rows if r[1] == os.getpid() or not _alive(r[1])]
    for import_id in dead:
        _discard_import(db, import_id)
    return len(dead)


def get_item(conn: sqlite3.Connection, project_id: int, item_id: int) -> dict:
    row = conn.execute("SELECT * FROM items WHERE id = ? AND project_id = ?", (item_id, project_id)).fetchone()
    if row is None:
        raise NotFound(f"project {project_id} has no item {item_id}")
    item = dict(row)
    item["data"] = json.loads(item["data"])
    return item


def item_data(conn: sqlite3.Connection, item_ids: list[int]) -> dict[int, dict]:
    out = {}
    for start in range(0, len(item_ids), 900):
        chunk = item_ids[start:start + 900]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT id, data FROM items WHERE id IN ({marks})", chunk):
            out[row[0]] = json.loads(row[1])
    return out


def count_items(conn: sqlite3.Connection, project_id: int) -> int:
    return conn.execute("SELECT count(*) FROM items WHERE project_id = ?", (project_id,)).fetchone()[0]


# -- annotations ------------------------------------------------------------

def _insert_annotation(conn, project_id, item_id, annotator, label, skipped, *, source="annotator",
                       duration_ms=None, idempotency_key=None) -> int:
    # A second answer by the same annotator replaces the first: one live answer per (item, annotator).
    previous = conn.execute(
        "SELECT id, skipped FROM annotations WHERE item_id = ? AND annotator = ? AND undone_at IS NULL",
        (item_id, annotator),
    ).fetchone()
    if previous is not None:
        _retire(conn, previous["id"], item_id, bool(previous["skipped"]))
    cur = conn.execute(
        "INSERT INTO annotations (project_id, item_id, annotator, label, skipped, source, duration_ms,"
        " idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (project_id, item_id, annotator, None if skipped else json.dumps(label), int(skipped), source,
         duration_ms, idempotency_key),
    )
    column = "n_skips" if skipped else "n_labels"
    conn.execute(f"UPDATE items SET {column} = {column} + 1, n_done = n_done + 1 WHERE id = ?", (item_id,))
    conn.execute("DELETE FROM leases WHERE item_id = ? AND annotator = ?", (item_id, annotator))
    return cur.lastrowid


def _retire(conn, annotation_id: int, item_id: int, skipped: bool) -> None:
    conn.execute("UPDATE annotations SET undone_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
                 (annotation_id,))
    column = "n_skips" if skipped else "n_labels"
    conn.execute(f"UPDATE items SET {column} = {column} - 1, n_done = n_done - 1 WHERE id = ?", (item_id,))


def add_annotation(db: Database, project_id: int, item_id: int, annotator: str, label, skipped: bool,
                   duration_ms: int | None = None, idempotency_key: str | None = None,
                   source: str = "annotator", overlap: int | None = None) -> tuple[dict, bool]:
    """Store one answer; returns (annotation, created). A repeated idempotency key returns the first.

    With ``overlap`` given, an answer on an item that already has that many
    answers from others is refused (409): two annotators never both label an
    item unless the project asked for it (e.g. a late answer after a lease ran out).
    """
    with db.write() as conn:
        if idempotency_key is not None:
            row = conn.execute(
                "SELECT * FROM annotations WHERE project_id = ? AND annotator = ? AND idempotency_key = ?",
                (project_id, annotator, idempotency_key),
            ).fetchone()
            if row is not None:
                return _annotation_row(row), False
        item = conn.execute("SELECT n_done FROM items WHERE id = ? AND project_id = ?", (item_id, project_id)).fetchone()
        if item is None:
            raise NotFound(f"project {project_id} has no item {item_id}")
        if overlap is not None:
            _check_answer_slot(conn, item_id, annotator, item["n_done"], overlap)
        annotation_id = _insert_annotation(conn, project_id, item_id, annotator, label, skipped, source=source,
                                           duration_ms=duration_ms, idempotency_key=idempotency_key)
        row = conn.execute("SELECT * FROM annotations WHERE id = ?", (annotation_id,)).fetchone()
        return _annotation_row(row), True


def _check_answer_slot(conn, item_id: int, annotator: str, n_done: int, overlap: int) -> None:
    """Refuse (409) an answer that would take a place others hold: answered, or leased to them.

    An annotator who already answered the item, or holds a live lease on it,
    always may (again). Reviewers settle disagreements through review, not here.
    """
    mine = conn.execute(
        "SELECT 1 FROM annotations WHERE item_id = ? AND annotator = ? AND undone_at IS NULL"
        " UNION ALL SELECT 1 FROM leases WHERE item_id = ? AND annotator = ? AND expires_at > ?",
        (item_id, annotator, item_id, annotator, time.time()),
    ).fetchone()
    if mine is not None:
        return
    if n_done >= overlap:
        raise Conflict(f"item {item_id} already has the {overlap} answer(s) this project wants "
                       f"(overlap {overlap}), probably given after your lease on it ran out; "
                       "your answer was not stored")
    leased = conn.execute("SELECT count(*) FROM leases WHERE item_id = ? AND annotator != ? AND expires_at > ?",
                          (item_id, annotator, time.time())).fetchone()[0]
    if n_done + leased >= overlap:
        raise Conflict(f"item {item_id} is reserved for another annotator (it is in their queue); your answer "
                       "was not stored. Answer the items your own queue pull returned")


def undo_annotation(db: Database, project_id: int, item_id: int, annotator: str) -> dict:
    with db.write() as conn:
        row = conn.execute(
            "SELECT * FROM annotations WHERE project_id = ? AND item_id = ? AND annotator = ? AND undone_at IS NULL",
            (project_id, item_id, annotator),
        ).fetchone()
        if row is None:
            raise NotFound(f"{annotator!r} has no label on item {item_id} to undo")
        _retire(conn, row["id"], item_id, bool(row["skipped"]))
        return _annotation_row(row)


def _annotation_row(row) -> dict:
    ann = dict(row)
    ann["label"] = json.loads(ann["label"]) if ann["label"] is not None else None
    ann["skipped"] = bool(ann["skipped"])
    return ann


def _live_answers(conn, project_id: int, after_item: int, limit_items: int) -> list[tuple[int, list[dict]]]:
    """Live, non-skipped answers of the next ``limit_items`` labeled items after ``after_item``, oldest first."""
    rows = conn.execute(
        """
        SELECT a.item_id, a.label, a.annotator, a.source, a.created_at FROM annotations a
        WHERE a.item_id IN (SELECT id FROM items WHERE project_id = ? AND id > ? AND n_labels > 0
                            ORDER BY id LIMIT ?)
          AND a.undone_at IS NULL AND a.skipped = 0
        ORDER BY a.item_id, a.id
        """,
        (project_id, after_item, limit_items),
    ).fetchall()
    grouped: dict[int, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r[0], []).append(
            {"label": json.loads(r[1]), "annotator": r[2], "source": r[3], "created_at": r[4]})
    return list(grouped.items())


def iter_resolved(conn: sqlite3.Connection, project_id: int, chunk: int = 2000) -> Iterator[tuple[int, dict]]:
    """(item_id, chosen answer) per labeled item, in id order: adjudicated, else majority, else the only one."""
    from assay.domain.agreement import resolve

    last = 0
    while True:
        groups = _live_answers(conn, project_id, last, chunk)
        if not groups:
            return
        for item_id, answers in groups:
            chosen = resolve(answers)
            if chosen is not None:
                yield item_id, chosen
        last = groups[-1][0]


def labeled_items(conn: sqlite3.Connection, project_id: int) -> list[tuple[int, object]]:
    """(item_id, label) per labeled item: the label the item gets (see iter_resolved)."""
    return [(item_id, chosen["label"]) for item_id, chosen in iter_resolved(conn, project_id)]


def agreement_units(conn: sqlite3.Connection, project_id: int) -> dict[int, dict[str, object]]:
    """{item_id: {annotator: value}} over annotators' own answers (not imports or reviews)."""
    rows = conn.execute(
        "SELECT item_id, annotator, label FROM annotations WHERE project_id = ? AND undone_at IS NULL"
        " AND skipped = 0 AND source = 'annotator' ORDER BY id", (project_id,))
    units: dict[int, dict] = {}
    for item_id, annotator, label in rows:
        value = json.loads(label)
        units.setdefault(item_id, {})[annotator] = tuple(value) if isinstance(value, list) else value
    return units


def item_answers(conn: sqlite3.Connection, project_id: int, item_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {i: [] for i in item_ids}
    for start in range(0, len(item_ids), 900):
        chunk = item_ids[start:start + 900]
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(
                f"SELECT item_id, annotator, label, source, created_at FROM annotations WHERE project_id = ?"
                f" AND item_id IN ({marks}) AND undone_at IS NULL AND skipped = 0 ORDER BY id",
                (project_id, *chunk)):
            out[r[0]].append({"annotator": r[1], "label": json.loads(r[2]), "source": r[3], "created_at": r[4]})
    return out


def pool_item_ids(conn: sqlite3.Connection, project_id: int) -> list[int]:
    """Items nobody has labeled or skipped: the candidates for acquisition."""
    rows = conn.execute("SELECT id FROM items WHERE project_id = ? AND n_done = 0 ORDER BY id", (project_id,))
    return [r[0] for r in rows]


def all_item_ids(conn: sqlite3.Connection, project_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM items WHERE project_id = ? ORDER BY id", (project_id,))]


def iter_items_data(conn: sqlite3.Connection, project_id: int, item_ids: list[int] | None = None,
                    chunk: int = 5000) -> Iterator[list[tuple[int, dict]]]:
    """(id, data) in chunks, for featurizing without holding every row twice."""
    if item_ids is None:
        last = 0
        while True:
            rows = conn.execute("SELECT id, data FROM items WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?",
                                (project_id, last, chunk)).fetchall()
            if not rows:
                return
            yield [(r[0], json.loads(r[1])) for r in rows]
            last = rows[-1][0]
    else:
        for start in range(0, len(item_ids), chunk):
            data = item_data(conn, item_ids[start:start + chunk])
            yield [(i, data[i]) for i in item_ids[start:start + chunk]]


# -- queue ------------------------------------------------------------------

def replace_queue(db: Database, project_id: int, rows: list[dict], version: dict | None) -> int | None:
    """Record a model version and swap in its queue in one transaction. Returns the version number."""
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
            return None  # deleted while its retrain ran
        number = None
        if version is not None:
            number = record_model_version(conn, project_id, version)
        if version is not None and version.get("stop_predictions") is not None:
            _keep_stop_predictions(conn, project_id, number, int(version["n_labels"]), version["stop_predictions"])
        if rows is not None:
            conn.execute("DELETE FROM queue WHERE project_id = ?", (project_id,))
            # Items deleted while the retrain ran are skipped, not a foreign-key failure.
            conn.executemany(
                "INSERT OR IGNORE INTO queue (project_id, item_id, rank, score, strategy, model_version, prediction)"
                " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM items WHERE id = ? AND project_id = ?)",
                [
                    (project_id, r["item_id"], rank, r.get("score"), r["strategy"], number,
                     json.dumps(r["prediction"]) if r.get("prediction") is not None else None,
                     r["item_id"], project_id)
                    for rank, r in enumerate(rows)
                ],
            )
        return number


def record_model_version(conn: sqlite3.Connection, project_id: int, version: dict) -> int:
    number = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE project_id = ?",
                          (project_id,)).fetchone()[0]
    fields = {k: version.get(k) for k in (
        "status", "model", "strategy", "n_labels", "accuracy", "accuracy_std", "accuracy_method",
        "fit_seconds", "acquire_seconds", "total_seconds", "pool_size", "error", "estimate", "estimate_low",
        "estimate_high", "kappa", "stop_signal")}
    fields["label_counts"] = json.dumps(version.get("label_counts") or {})
    fields["evaluation"] = json.dumps(version["evaluation"]) if version.get("evaluation") else None
    columns = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    conn.execute(f"INSERT INTO model_versions (project_id, version, {columns}) VALUES (?, ?, {marks})",
                 (project_id, number, *fields.values()))
    return number


def _live_leases_sql() -> str:
    return "SELECT count(*) FROM leases l WHERE l.item_id = i.id AND l.expires_at > ? AND l.annotator != ?"


def pull_queue(db: Database, project: dict, annotator: str, n: int, lease_seconds: float) -> list[dict]:
    """The next ``n`` items for ``annotator``, leased to them so nobody else gets them.

    Order: items already leased to this annotator (a reload gets the same ones
    back), then the strategy's queue by rank, then random unlabeled items so the
    queue never runs dry while a retrain is under way.
    """
    project_id = project["id"]
    overlap = int(project.get("overlap") or 1)
    now = time.time()
    picked: list[dict] = []
    seen: set[int] = set()

    def eligible_sql(alias_item="i"):
        return (
            f"{alias_item}.n_done + ({_live_leases_sql()}) < ?"
            f" AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = {alias_item}.id"
            f"   AND a.annotator = ? AND a.undone_at IS NULL)"
        )

    with db.write() as conn:
        conn.execute("DELETE FROM leases WHERE project_id = ? AND expires_at <= ?", (project_id, now))
        mine = conn.execute(
            """
            SELECT l.item_id, q.score, q.strategy, q.model_version, q.prediction FROM leases l
            LEFT JOIN queue q ON q.project_id = l.project_id AND q.item_id = l.item_id
            JOIN items i ON i.id = l.item_id
            WHERE l.project_id = ? AND l.annotator = ? AND i.n_done < ?
              AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = l.item_id
                              AND a.annotator = ? AND a.undone_at IS NULL)
            ORDER BY coalesce(q.rank, 1e18), l.expires_at, l.item_id LIMIT ?
            """,
            (project_id, annotator, overlap, annotator, n),
        ).fetchall()
        for row in mine:
            picked.append(dict(row))
            seen.add(row["item_id"])
        if len(picked) < n:
            rows = conn.execute(
                f"""
                SELECT q.item_id, q.score, q.strategy, q.model_version, q.prediction FROM queue q
                JOIN items i ON i.id = q.item_id
                WHERE q.project_id = ? AND {eligible_sql()}
                ORDER BY q.rank LIMIT ?
                """,
                (project_id, now, annotator, overlap, annotator, n + len(seen)),
            ).fetchall()
            for row in rows:
                if row["item_id"] not in seen and len(picked) < n:
                    picked.append(dict(row))
                    seen.add(row["item_id"])
        if len(picked) < n:
            for item_id in _random_fill(conn, project_id, annotator, overlap, now, n - len(picked), seen):
                picked.append({"item_id": item_id, "score": None, "strategy": "random", "model_version": None,
                               "prediction": None})
                seen.add(item_id)
        expires = now + lease_seconds
        conn.executemany(
            "INSERT INTO leases (project_id, item_id, annotator, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(item_id, annotator) DO UPDATE SET expires_at = excluded.expires_at",
            [(project_id, p["item_id"], annotator, expires) for p in picked],
        )
        _record_served(conn, project_id, picked)
        data = item_data(conn, [p["item_id"] for p in picked])
    out = []
    for p in picked:
        out.append({
            "id": p["item_id"],
            "data": data[p["item_id"]],
            "prediction": json.loads(p["prediction"]) if p.get("prediction") else None,
            "score": p.get("score"),
            "strategy": p.get("strategy") or "random",
            "model_version": p.get("model_version"),
        })
    return out


def _record_served(conn, project_id: int, picked: list[dict]) -> None:
    """The live model's prediction for each item handed out with one, kept from its first serving: once the
    item is labeled, a test of a model that had not trained on it (server.evaluation.accuracy)."""
    rows = []
    for p in picked:
        prediction = json.loads(p["prediction"]) if p.get("prediction") else None
        if p.get("model_version") is None or not isinstance(prediction, dict) or "label" not in prediction:
            continue  # random fill, a cold-start queue, or multi-label
        rows.append((project_id, p["item_id"], p["model_version"], p.get("strategy") or "random",
                     json.dumps(prediction["label"]), float(prediction.get("confidence") or 0.0)))
    conn.executemany("INSERT OR IGNORE INTO served (project_id, item_id, model_version, strategy, predicted,"
                     " confidence) VALUES (?, ?, ?, ?, ?, ?)", rows)


def prequential_tests(conn: sqlite3.Connection, project_id: int, labels: dict[int, object]) -> list[dict]:
    """Per labeled item served with a prediction: the serving version, whether it was an audit pick, the
    confidence shown and whether the prediction matched the item's label (``labels``: item -> label)."""
    from assay.learning.queueing import AUDIT

    out = []
    for item_id, version, strategy, predicted, confidence in conn.execute(
            "SELECT item_id, model_version, strategy, predicted, confidence FROM served WHERE project_id = ?"
            " ORDER BY item_id", (project_id,)):
        if item_id in labels:
            predicted = json.loads(predicted)
            out.append({"item_id": item_id, "version": version, "audit": strategy == AUDIT, "predicted": predicted,
                        "label": labels[item_id], "confidence": confidence, "correct": predicted == labels[item_id]})
    return out


def stop_set_ids(conn: sqlite3.Connection, project_id: int, size: int) -> list[int]:
    """The stop set: the ``size`` items first in the import-time shuffle, so it stays fixed as labels come."""
    rows = conn.execute("SELECT id FROM items WHERE project_id = ? ORDER BY shuffle, id LIMIT ?", (project_id, size))
    return [r[0] for r in rows]


def _keep_stop_predictions(conn, project_id: int, number: int, n_labels: int, predictions: dict) -> None:
    """Store a version's stop-set predictions, and drop those no later signal can compare with: the
    reference of a model with ``n`` labels has at most ``(1 - LAG_SHARE) n`` (server.evaluation.stopping),
    and ``n`` only grows, so everything older than this version's own reference goes."""
    from assay.evaluation.stopping import reference_labels

    conn.execute("INSERT OR REPLACE INTO stop_predictions (project_id, version, n_labels, predictions)"
                 " VALUES (?, ?, ?, ?)", (project_id, number, n_labels, json.dumps(predictions)))
    oldest = conn.execute("SELECT max(version) FROM stop_predictions WHERE project_id = ? AND n_labels <= ?",
                          (project_id, reference_labels(n_labels))).fetchone()[0]
    if oldest is not None:
        conn.execute("DELETE FROM stop_predictions WHERE project_id = ? AND version < ?", (project_id, oldest))


def stop_predictions(conn: sqlite3.Connection, project_id: int, max_labels: int) -> dict | None:
    """The newest model version trained on at most ``max_labels`` labels with stop-set predictions:
    ``{"version", "n_labels", "predictions": {item_id: label}}``, or None."""
    row = conn.execute("SELECT version, n_labels, predictions FROM stop_predictions WHERE project_id = ?"
                       " AND n_labels <= ? ORDER BY version DESC LIMIT 1", (project_id, max_labels)).fetchone()
    if row is None:
        return None
    return {"version": row[0], "n_labels": row[1],
            "predictions": {int(k): v for k, v in json.loads(row[2]).items()}}


def _random_fill(conn, project_id, annotator, overlap, now, want, exclude) -> list[int]:
    """Items beyond the queue: first those other annotators started (overlap > 1), then random fresh ones.

    Fresh items come from a range scan of the shuffle index from a random
    start, wrapping once, so a random pick costs an index lookup, not a sort.
    """
    eligible = (f"i.n_done + ({_live_leases_sql()}) < ? AND NOT EXISTS (SELECT 1 FROM annotations a"
                " WHERE a.item_id = i.id AND a.annotator = ? AND a.undone_at IS NULL)")
    found: list[int] = []
    if overlap > 1:
        rows = conn.execute(
            f"SELECT i.id FROM items i WHERE i.project_id = ? AND i.n_done > 0 AND i.n_done < ? AND {eligible}"
            " ORDER BY i.n_done DESC, i.shuffle LIMIT ?",
            (project_id, overlap, now, annotator, overlap, annotator, want + len(exclude)),
        ).fetchall()
        found = [r[0] for r in rows if r[0] not in exclude][:want]
    start = random.randrange(SHUFFLE_RANGE)
    for lo, hi in ((start, SHUFFLE_RANGE), (0, start)):
        cursor = lo
        while len(found) < want:
            rows = conn.execute(
                f"SELECT i.id, i.shuffle FROM items i WHERE i.project_id = ? AND i.n_done = 0"
                f" AND i.shuffle >= ? AND i.shuffle < ? AND {eligible} ORDER BY i.shuffle LIMIT ?",
                (project_id, cursor, hi, now, annotator, overlap, annotator, 4 * want + 8),
            ).fetchall()
            if not rows:
                break
            for item_id, _ in rows:
                if item_id not in exclude and item_id not in found and len(found) < want:
                    found.append(item_id)
            cursor = rows[-1][1] + 1
        if len(found) >= want:
            break
    return found


def release_leases(db: Database, project_id: int, annotator: str, item_ids: list[int] | None = None) -> None:
    with db.write() as conn:
        if item_ids is None:
            conn.execute("DELETE FROM leases WHERE project_id = ? AND annotator = ?", (project_id, annotator))
        else:
            conn.executemany("DELETE FROM leases WHERE project_id = ? AND annotator = ? AND item_id = ?",
                             [(project_id, annotator, i) for i in item_ids])


def queue_predictions(conn: sqlite3.Connection, project_id: int, item_ids: list[int]) -> dict[int, dict]:
    """What the current queue says about these items (those it holds): prediction, score, strategy, version."""
    out = {}
    for chunk in _chunks(list(item_ids)):
        marks = ", ".join("?" for _ in chunk)
        for row in conn.execute(
                f"SELECT item_id, score, strategy, model_version, prediction FROM queue"
                f" WHERE project_id = ? AND item_id IN ({marks})", (project_id, *chunk)):
            out[row["item_id"]] = {
                "prediction": json.loads(row["prediction"]) if row["prediction"] else None,
                "score": row["score"], "strategy": row["strategy"], "model_version": row["model_version"],
            }
    return out


def queue_rows(conn: sqlite3.Connection, project_id: int) -> list[dict]:
    rows = conn.execute("SELECT * FROM queue WHERE project_id = ? ORDER BY rank", (project_id,)).fetchall()
    return [dict(r) for r in rows]


# -- stats and history ---------------------------------------------------------

def model_versions(conn: sqlite3.Connection, project_id: int) -> list[dict]:
    rows = conn.execute("SELECT * FROM model_versions WHERE project_id = ? ORDER BY version", (project_id,))
    out = []
    for r in rows:
        v = dict(r)
        v["label_counts"] = json.loads(v["label_counts"] or "{}")
        v["evaluation"] = json.loads(v["evaluation"]) if v.get("evaluation") else None
        out.append(v)
    return out


def latest_version(conn: sqlite3.Connection, project_id: int, status: str | None = None) -> dict | None:
    sql = "SELECT * FROM model_versions WHERE project_id = ?"
    args: list = [project_id]
    if status is not None:
        sql += " AND status = ?"
        args.append(status)
    row = conn.execute(sql + " ORDER BY version DESC LIMIT 1", args).fetchone()
    return dict(row) if row else None


_label_counts_cache: dict[tuple[str, int], tuple[int, dict]] = {}


def label_counts(conn: sqlite3.Connection, project_id: int) -> dict:
    """How many items have each label (as export resolves them); recomputed only when answers changed."""
    revision = counts(conn, project_id)["revision"]
    key = (conn.execute("PRAGMA database_list").fetchone()[2], project_id)
    cached = _label_counts_cache.get(key)
    if cached is not None and cached[0] == revision:
        return dict(cached[1])
    tally: Counter = Counter()
    for _, label in labeled_items(conn, project_id):
        for value in (label if isinstance(label, list) else [label]):
            tally[value] += 1
    _label_counts_cache[key] = (revision, dict(tally))
    return dict(tally)


def counts(conn: sqlite3.Connection, project_id: int) -> dict:
    """Items, labeled, skipped and unlabeled (nobody answered) of a project: one row, kept by triggers."""
    row = conn.execute("SELECT items, labeled, skipped, untouched, revision FROM project_counts WHERE project_id = ?",
                       (project_id,)).fetchone()
    if row is None:
        return {"total": 0, "labeled": 0, "skipped": 0, "unlabeled": 0, "revision": 0}
    return {"total": row[0], "labeled": row[1], "skipped": row[2], "unlabeled": row[3], "revision": row[4]}


def annotator_counts(conn: sqlite3.Connection, project_id: int) -> dict:
    rows = conn.execute(
        "SELECT annotator, count(*) FROM annotations WHERE project_id = ? AND undone_at IS NULL AND skipped = 0"
        " GROUP BY annotator", (project_id,))
    return {r[0]: r[1] for r in rows}


# -- export -----------------------------------------------------------------------

def iter_export(conn: sqlite3.Connection, project_id: int, every_annotation: bool = False) -> Iterator[dict]:
    """One row per labeled item with the label it gets, or with ``every_annotation`` one row per answer."""
    if every_annotation:
        last = 0
        while True:
            groups = _live_answers(conn, project_id, last, 2000)
            if not groups:
                return
            data = item_data(conn, [g[0] for g in groups])
            external = _external_ids(conn, [g[0] for g in groups])
            for item_id, answers in groups:
                for answer in answers:
                    yield _export_row(item_id, external[item_id], data[item_id], answer)
            last = groups[-1][0]
    batch: list[tuple[int, dict]] = []
    for pair in iter_resolved(conn, project_id):
        batch.append(pair)
        if len(batch) >= 2000:
            yield from _export_batch(conn, batch)
            batch = []
    yield from _export_batch(conn, batch)


def export_data_keys(conn: sqlite3.Connection, project_id: int) -> list[str]:
    """Every data field of the labeled items, ordered by the first item that has it, then its place there."""
    firsts = conn.execute(
        "SELECT j.key, min(i.id) FROM items i, json_each(i.data) j WHERE i.project_id = ? AND i.n_labels > 0"
        " GROUP BY j.key",
        (project_id,),
    ).fetchall()
    first_data = item_data(conn, sorted({item_id for _, item_id in firsts}))

    def place(pair):
        key, item_id = pair
        return item_id, list(first_data[item_id]).index(key)

    return [key for key, _ in sorted(firsts, key=place)]


def _external_ids(conn, item_ids: list[int]) -> dict[int, str | None]:
    out = {}
    for start in range(0, len(item_ids), 900):
        chunk = item_ids[start:start + 900]
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(f"SELECT id, external_id FROM items WHERE id IN ({marks})", chunk):
            out[r[0]] = r[1]
    return out


def _export_batch(conn, batch):
    if not batch:
        return
    ids = [i for i, _ in batch]
    data = item_data(conn, ids)
    external = _external_ids(conn, ids)
    for item_id, chosen in batch:
        yield _export_row(item_id, external[item_id], data[item_id], chosen)


def _export_row(item_id, external_id, data, answer) -> dict:
    return {"item_id": item_id, "external_id": external_id, "data": data, "label": answer["label"],
            "annotator": answer["annotator"], "timestamp": answer["created_at"],
            "source": answer["source"], "method": answer.get("method")}


def check_label(project: dict, label=None, labels=None):
    """The stored form of an answer, or BadRequest naming the allowed labels."""
    allowed = project["labels"]
    if project["multi_label"]:
        values = labels if labels is not None else ([label] if label is not None else None)
        if not isinstance(values, list):
            raise BadRequest("a multi-label project takes \"labels\": a list of label names")
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise BadRequest(f"unknown label(s) {unknown}; this project's labels are {allowed}")
        return sorted(set(values), key=allowed.index)
    if labels is not None:
        if not isinstance(labels, list) or len(labels) != 1:
            raise BadRequest("a single-label project takes one \"label\"")
        label = labels[0]
    if not isinstance(label, str) or label not in allowed:
        raise BadRequest(f"unknown label {label!r}; this project's labels are {allowed}")
    return label


# -- accounts -----------------------------------------------------------------------

ROLES = ("owner", "reviewer", "annotator")


def create_user(db: Database, name: str, password_hash: str | None) -> int:
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise Conflict(f"a user named {name!r} already exists")
        return conn.execute("INSERT INTO users (name, password_hash) VALUES (?, ?)", (name, password_hash)).lastrowid


def get_user(conn: sqlite3.Connection, key) -> dict:
    column = "id" if isinstance(key, int) else "name"
    row = conn.execute(f"SELECT * FROM users WHERE {column} = ?", (key,)).fetchone()
    if row is None:
        raise NotFound(f"no user {key!r}; `assay create-user` makes one")
    return dict(row)


def set_password(db: Database, user_id: int, password_hash: str) -> None:
    """A new password also ends the user's login sessions: whoever knew the old one may hold one."""
    with db.write() as conn:
        conn.execute("UPDATE users SET password_hash = ?, session_generation = session_generation + 1 WHERE id = ?",
                     (password_hash, user_id))


def end_sessions(db: Database, user_id: int) -> None:
    """Ends every login session of a user (API tokens are untouched): sessions carry the generation they began in."""
    with db.write() as conn:
        conn.execute("UPDATE users SET session_generation = session_generation + 1 WHERE id = ?", (user_id,))


def grant(db: Database, user_id: int, project_id: int | None, role: str) -> None:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    with db.write() as conn:
        conn.execute("DELETE FROM memberships WHERE user_id = ? AND coalesce(project_id, 0) = ?",
                     (user_id, project_id or 0))
        conn.execute("INSERT INTO memberships (user_id, project_id, role) VALUES (?, ?, ?)",
                     (user_id, project_id, role))


def roles_of(conn: sqlite3.Connection, user_id: int) -> dict:
    """{project_id or None: role} for a user; None means every project."""
    rows = conn.execute("SELECT project_id, role FROM memberships WHERE user_id = ?", (user_id,))
    return {r[0]: r[1] for r in rows}


def add_token(db: Database, user_id: int, token_hash: str, prefix: str) -> int:
    with db.write() as conn:
        return conn.execute("INSERT INTO tokens (user_id, token_hash, prefix) VALUES (?, ?, ?)",
                            (user_id, token_hash, prefix)).lastrowid


def user_for_token(conn: sqlite3.Connection, token_hash: str) -> dict | None:
    row = conn.execute(
        "SELECT u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        (token_hash,)).fetchone()
    return dict(row) if row else None


def list_tokens(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, prefix, created_at, revoked_at FROM tokens WHERE user_id = ? ORDER BY id", (user_id,))]


def revoke_token(db: Database, token_id: int | None = None, prefix: str | None = None) -> int:
    with db.write() as conn:
        if token_id is not None:
            cur = conn.execute("UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                               " WHERE id = ? AND revoked_at IS NULL", (token_id,))
        else:
            cur = conn.execute("UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                               " WHERE prefix = ? AND revoked_at IS NULL", (prefix,))
        return cur.rowcount
