"""Items and the imports that bring them (the ``items`` and ``imports`` tables)."""
from __future__ import annotations

import json
import os
import random
import socket
from typing import Iterator

from assay.errors import Conflict, NotFound

from .answers import insert_answer, label_new_twins
from .db import Database, in_chunks, politely, reading
from .hashing import content_hash

# Each item gets a random place in [0, SHUFFLE_RANGE) when imported: the stop set and random picks use it.
SHUFFLE_RANGE = 2**62
IMPORT_CHUNK = 500  # rows per write transaction: a label waits for one chunk, not the whole file


def existing_external_ids(source, project_id: int) -> set[str]:
    rows = reading(source).execute(
        "SELECT external_id FROM items WHERE project_id = ? AND external_id IS NOT NULL", (project_id,))
    return {r[0] for r in rows}


def insert_items(db: Database, project_id: int, rows: list[tuple[str | None, dict, object]],
                 seed_annotator: str = "import", progress=None, chunk: int = IMPORT_CHUNK,
                 item_type: str | None = None) -> tuple[int, int]:
    """Insert validated (external_id, data, label-or-None) rows, IMPORT_CHUNK rows per transaction.

    Rows whose external id is already in the project (or earlier in the same
    batch) are skipped, so re-importing a file is harmless. Returns (imported, skipped).

    An item whose exact duplicate (content_hash) is labeled gets that label as ``twin of item N``, and a seed
    label reaches the unanswered twins of its item likewise (answers.label_new_twins).

    Items of a running import are visible (they can be pulled and labeled) as
    soon as their chunk commits. If the import fails half-way its items are
    deleted again; if the process dies half-way they are deleted at the next
    start (discard_dead_imports), together with any answers given on them.

    ``item_type``: the type the rows were checked as; Conflict if the project's is another by now.
    """
    import_id = _begin_import(db, project_id, item_type)
    imported = skipped = 0
    rng = random.Random()
    try:
        for start in range(0, len(rows), chunk):
            db.let_others_write()
            with db.write() as conn:
                hashes = set()
                for external_id, data, label in politely(rows[start:start + chunk]):
                    digest = content_hash(data)
                    cur = conn.execute(
                        "INSERT INTO items (project_id, external_id, data, shuffle, import_id, content_hash)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, external_id) DO NOTHING",
                        (project_id, external_id, json.dumps(data, ensure_ascii=False),
                         rng.randrange(SHUFFLE_RANGE), import_id, digest),
                    )
                    if not cur.rowcount:
                        skipped += 1
                        continue
                    hashes.add(digest)
                    if label is not None:
                        insert_answer(conn, project_id, cur.lastrowid, seed_annotator, label, False, source="import")
                    imported += 1
                # Exact duplicates of labeled items arrive labeled (and seed labels reach their twins).
                label_new_twins(conn, project_id, hashes)
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
        for chunk, marks in in_chunks(item_ids):
            for item_id, n_labels in conn.execute(
                    f"SELECT id, n_labels FROM items WHERE project_id = ? AND id IN ({marks})", (project_id, *chunk)):
                found.add(item_id)
                labeled += n_labels > 0
        missing = [i for i in item_ids if i not in found]
        if missing:
            raise NotFound(f"project {project_id} has no item(s) {missing[:10]}; nothing was deleted")
        if labeled and not with_labels:
            raise Conflict(f"{labeled} of these items carry labels; nothing was deleted. Export them first if "
                           "you need them, then delete with_labels=true (CLI: --with-labels)",
                           details={"labeled": labeled})
        for chunk, marks in in_chunks(item_ids):
            conn.execute(f"DELETE FROM items WHERE id IN ({marks})", chunk)
        return {"deleted": len(item_ids), "labeled": labeled}


def _begin_import(db: Database, project_id: int, item_type: str | None = None) -> int:
    with db.write() as conn:
        if item_type is not None:
            row = conn.execute("SELECT item_type FROM projects WHERE id = ?", (project_id,)).fetchone()
            if row is None:
                raise NotFound(f"no project {project_id}")
            if row[0] != item_type:
                raise Conflict(f"the project's item_type changed to {row[0]!r} while the file was being checked as "
                               f"{item_type!r}; nothing was imported: import it again")
        return conn.execute("INSERT INTO imports (project_id, pid, host) VALUES (?, ?, ?)",
                            (project_id, os.getpid(), socket.gethostname())).lastrowid


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
    """Undo imports whose process died before they finished (a file imports whole or not at all).

    Only this machine's imports can be judged: a process id says nothing about another machine's (servers
    on several machines share one PostgreSQL), so theirs wait for a server starting on their machine."""
    here = socket.gethostname()
    rows = db.reader.execute("SELECT id, pid FROM imports WHERE finished_at IS NULL AND (host IS NULL OR host = ?)",
                             (here,)).fetchall()
    # Our own pid at start-up is a previous run's (containers restart with the same small pids).
    dead = [r[0] for r in rows if r[1] == os.getpid() or not _alive(r[1])]
    for import_id in dead:
        _discard_import(db, import_id)
    return len(dead)


def get_item(source, project_id: int, item_id: int) -> dict:
    row = reading(source).execute("SELECT * FROM items WHERE id = ? AND project_id = ?",
                                  (item_id, project_id)).fetchone()
    if row is None:
        raise NotFound(f"project {project_id} has no item {item_id}")
    item = dict(row)
    item["data"] = json.loads(item["data"])
    return item


def item_data(source, item_ids: list[int]) -> dict[int, dict]:
    conn = reading(source)
    out = {}
    for chunk, marks in in_chunks(item_ids):
        for row in conn.execute(f"SELECT id, data FROM items WHERE id IN ({marks})", chunk):
            out[row[0]] = json.loads(row[1])
    return out


def _column_by_id(source, column: str, item_ids: list[int]) -> dict:
    """One column of these items, by id (``column`` is one of this module's names, never user input)."""
    conn = reading(source)
    out = {}
    for chunk, marks in in_chunks(item_ids):
        for r in conn.execute(f"SELECT id, {column} FROM items WHERE id IN ({marks})", chunk):
            out[r[0]] = r[1]
    return out


def external_ids(source, item_ids: list[int]) -> dict[int, str | None]:
    return _column_by_id(source, "external_id", item_ids)


def pool_item_ids(source, project_id: int) -> list[int]:
    """Items nobody has labeled or skipped: the candidates for acquisition."""
    rows = reading(source).execute("SELECT id FROM items WHERE project_id = ? AND n_done = 0 ORDER BY id",
                                   (project_id,))
    return [r[0] for r in rows]


def all_item_ids(source, project_id: int) -> list[int]:
    return [r[0] for r in reading(source).execute("SELECT id FROM items WHERE project_id = ? ORDER BY id",
                                                  (project_id,))]


def shuffled_item_ids(source, project_id: int) -> list[int]:
    """Every item, in the import-time shuffle's order (uniform random; the stop set is its first items)."""
    return [r[0] for r in reading(source).execute("SELECT id FROM items WHERE project_id = ? ORDER BY shuffle, id",
                                                  (project_id,))]


def iter_items_data(source, project_id: int, item_ids: list[int] | None = None,
                    chunk: int = 5000) -> Iterator[list[tuple[int, dict]]]:
    """(id, data) in chunks, for featurizing without holding every row twice."""
    conn = reading(source)
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


def content_hashes(source, item_ids: list[int]) -> dict[int, str | None]:
    """Each item's content hash (see content_hash): items sharing one are twins."""
    return _column_by_id(source, "content_hash", item_ids)


def twin_ids(source, project_id: int, item_id: int) -> list[int]:
    """The item's twins: the project's other items with the same content hash, by id."""
    rows = reading(source).execute(
        "SELECT t.id FROM items i JOIN items t ON t.project_id = i.project_id AND t.content_hash = i.content_hash"
        " WHERE i.id = ? AND i.project_id = ? AND t.id != i.id ORDER BY t.id", (item_id, project_id))
    return [r[0] for r in rows]


def duplicate_count(source, project_id: int) -> int:
    """How many of the project's items repeat an earlier item's content (a group of k twins counts k - 1)."""
    row = reading(source).execute(
        "SELECT count(*) - count(DISTINCT content_hash) FROM items WHERE project_id = ? AND content_hash IS NOT NULL",
        (project_id,)).fetchone()
    return int(row[0] or 0)
