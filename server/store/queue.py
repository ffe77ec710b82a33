"""The queue a retrain leaves, the leases that reserve items, what was served, the stop set
(``queue``, ``leases``, ``served``; the stop set is a prefix of the items' shuffle order).

Which items an annotator gets is decided in assay.domain.serving; these are its statements,
all run inside the one write transaction it opens.
"""
from __future__ import annotations

import json
import time

from .db import Database, dialect, in_chunks, lock_project, reading
from .predictions import replace_item_predictions
from .versions import keep_stop_predictions, record_model_version, set_featurizing


def replace_queue(db: Database, project_id: int, rows: list[dict] | None, version: dict | None,
                  stop_reference_labels: int | None = None, predictions: list[dict] | None = None,
                  featurized: tuple[int, int] | None = None) -> int | None:
    """Record a model version and swap in its queue in one transaction. Returns the version number.
    ``featurized`` (done, total): how much of the project's items the job left featurized (store.featurizing).

    A version with ``stop_predictions`` keeps them; ``stop_reference_labels`` (the most labels its
    stop signal's reference may have) says which older ones can go. ``predictions`` (the version's
    predictions for the labeled items, see store.predictions) replace the previous version's.
    """
    with db.write() as conn:
        lock_project(conn, project_id)  # the version number, and the queue a pull reads
        if conn.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
            return None  # deleted while its retrain ran
        if featurized is not None:
            set_featurizing(conn, project_id, featurized[0], featurized[1], time.time())
        number = None
        if version is not None:
            number = record_model_version(conn, project_id, version)
        if version is not None and version.get("stop_predictions") is not None:
            keep_stop_predictions(conn, project_id, number, int(version["n_labels"]), version["stop_predictions"],
                                  stop_reference_labels)
        if predictions is not None and number is not None:
            replace_item_predictions(conn, project_id, number, predictions)
        if rows is not None:
            conn.execute("DELETE FROM queue WHERE project_id = ?", (project_id,))
            # Items deleted while the retrain ran are skipped, not a foreign-key failure.
            conn.executemany(
                "INSERT OR IGNORE INTO queue (project_id, item_id, rank, score, strategy, model_version, prediction,"
                " selection_prob) SELECT " + _QUEUE_VALUES[dialect(conn)] +
                " WHERE EXISTS (SELECT 1 FROM items WHERE id = ? AND project_id = ?)",
                [
                    (project_id, r["item_id"], rank, r.get("score"), r["strategy"], number,
                     json.dumps(r["prediction"]) if r.get("prediction") is not None else None,
                     r.get("selection_prob"), r["item_id"], project_id)
                    for rank, r in enumerate(rows)
                ],
            )
        return number


# A SELECT of parameters has no column to take their types from: PostgreSQL is told them.
_QUEUE_VALUES = {"sqlite": "?, ?, ?, ?, ?, ?, ?, ?",
                 "postgresql": "?::bigint, ?::bigint, ?::bigint, ?::double precision, ?::text, ?::bigint, ?::text,"
                               " ?::double precision"}


def _served_row(row) -> dict:
    out = dict(row)
    out["prediction"] = json.loads(out["prediction"]) if out.get("prediction") else None
    return out


# An item is open to an annotator while its answers plus others' live leases stay under the overlap
# and the annotator has not answered it; the statements below bind (now, annotator, overlap, annotator).
_OPEN_TO = ("i.n_done + (SELECT count(*) FROM leases l WHERE l.item_id = i.id AND l.expires_at > ?"
            " AND l.annotator != ?) < ?"
            " AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id"
            " AND a.annotator = ? AND a.undone_at IS NULL)")


def expire_leases(tx, project_id: int, now: float) -> None:
    """Opens a queue pull's transaction: takes the project's lock (store.lock_project), then drops lapsed leases."""
    lock_project(tx, project_id)
    tx.execute("DELETE FROM leases WHERE project_id = ? AND expires_at <= ?", (project_id, now))


def leased_items(tx, project_id: int, annotator: str, overlap: int, limit: int) -> list[dict]:
    """Items leased to ``annotator`` and still open to them, in queue order (unqueued ones last)."""
    rows = tx.execute(
        """
        SELECT l.item_id, q.score, q.strategy, q.model_version, q.prediction, q.selection_prob FROM leases l
        LEFT JOIN queue q ON q.project_id = l.project_id AND q.item_id = l.item_id
        JOIN items i ON i.id = l.item_id
        WHERE l.project_id = ? AND l.annotator = ? AND i.n_done < ?
          AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = l.item_id
                          AND a.annotator = ? AND a.undone_at IS NULL)
        ORDER BY coalesce(q.rank, 1e18), l.expires_at, l.item_id LIMIT ?
        """,
        (project_id, annotator, overlap, annotator, limit),
    ).fetchall()
    return [_served_row(r) for r in rows]


def leased_hashes(tx, project_id: int, now: float) -> dict[str, set[int]]:
    """{content hash: item ids} of the project's items on a live lease, whoever holds it (twins: store.items)."""
    out: dict[str, set[int]] = {}
    for item_id, digest in tx.execute(
            "SELECT DISTINCT l.item_id, i.content_hash FROM leases l JOIN items i ON i.id = l.item_id"
            " WHERE l.project_id = ? AND l.expires_at > ? AND i.content_hash IS NOT NULL", (project_id, now)):
        out.setdefault(digest, set()).add(item_id)
    return out


def queued_items(tx, project_id: int, annotator: str, overlap: int, now: float, limit: int) -> list[dict]:
    """The queue's rows open to ``annotator``, by rank: item_id, score, strategy, model_version, prediction,
    selection_prob."""
    rows = tx.execute(
        f"""
        SELECT q.item_id, q.score, q.strategy, q.model_version, q.prediction, q.selection_prob FROM queue q
        JOIN items i ON i.id = q.item_id
        WHERE q.project_id = ? AND {_OPEN_TO}
        ORDER BY q.rank LIMIT ?
        """,
        (project_id, now, annotator, overlap, annotator, limit),
    ).fetchall()
    return [_served_row(r) for r in rows]


def started_items(tx, project_id: int, annotator: str, overlap: int, now: float, limit: int) -> list[int]:
    """Items others answered but not yet ``overlap`` times, open to ``annotator``: most answered first."""
    rows = tx.execute(
        f"SELECT i.id FROM items i WHERE i.project_id = ? AND i.n_done > 0 AND i.n_done < ? AND {_OPEN_TO}"
        " ORDER BY i.n_done DESC, i.shuffle LIMIT ?",
        (project_id, overlap, now, annotator, overlap, annotator, limit),
    ).fetchall()
    return [r[0] for r in rows]


def fresh_items(tx, project_id: int, annotator: str, overlap: int, now: float, low: int, high: int,
                limit: int) -> list[tuple[int, int]]:
    """(id, shuffle) of unanswered items open to ``annotator`` with shuffle in [low, high), in shuffle order:
    a range scan of the shuffle index."""
    rows = tx.execute(
        f"SELECT i.id, i.shuffle FROM items i WHERE i.project_id = ? AND i.n_done = 0"
        f" AND i.shuffle >= ? AND i.shuffle < ? AND {_OPEN_TO} ORDER BY i.shuffle LIMIT ?",
        (project_id, low, high, now, annotator, overlap, annotator, limit),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def lease_items(tx, project_id: int, annotator: str, item_ids: list[int], expires: float) -> None:
    tx.executemany(
        "INSERT INTO leases (project_id, item_id, annotator, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(item_id, annotator) DO UPDATE SET expires_at = excluded.expires_at",
        [(project_id, item_id, annotator, expires) for item_id in item_ids],
    )


def record_served(tx, project_id: int, picked: list[dict]) -> None:
    """The live model's prediction for each item handed out with one, kept from its first serving: once the
    item is labeled, a test of a model that had not trained on it (assay.evaluation.accuracy)."""
    rows = []
    for p in picked:
        prediction = p.get("prediction")
        if p.get("model_version") is None or not isinstance(prediction, dict) or "label" not in prediction:
            continue  # random fill, a cold-start queue, or multi-label
        top = prediction.get("top")
        rows.append((project_id, p["item_id"], p["model_version"], p.get("strategy") or "random",
                     json.dumps(prediction["label"]), float(prediction.get("confidence") or 0.0),
                     json.dumps(top) if top else None))
    tx.executemany("INSERT OR IGNORE INTO served (project_id, item_id, model_version, strategy, predicted,"
                   " confidence, top) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def record_servings(tx, project_id: int, annotator: str, picked: list[dict]) -> None:
    """Where each item handed to ``annotator`` came from (``picked``: item_id, strategy, score, model_version,
    selection_prob, and ``leased`` for one handed back from the annotator's lease, which keeps its pick)."""
    labeled = tx.execute("SELECT labeled FROM project_counts WHERE project_id = ?", (project_id,)).fetchone()
    labeled = labeled[0] if labeled else 0
    rows = [(project_id, p["item_id"], annotator, p.get("strategy") or "random", p.get("score"),
             p.get("model_version"), p.get("selection_prob"), labeled) for p in picked]
    sql = ("INTO servings (project_id, item_id, annotator, strategy, score, model_version, selection_prob, labeled)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    tx.executemany("INSERT OR IGNORE " + sql, [r for r, p in zip(rows, picked) if p.get("leased")])
    if dialect(tx) == "postgresql":  # no INSERT OR REPLACE: the upsert, with a fresh served_at as REPLACE gives
        replace = ("INSERT " + sql + " ON CONFLICT (item_id, annotator) DO UPDATE SET project_id = excluded.project_id,"
                   " strategy = excluded.strategy, score = excluded.score, model_version = excluded.model_version,"
                   " selection_prob = excluded.selection_prob, labeled = excluded.labeled,"
                   " served_at = excluded.served_at")
    else:
        replace = "INSERT OR REPLACE " + sql
    tx.executemany(replace, [r for r, p in zip(rows, picked) if not p.get("leased")])


def item_servings(source, project_id: int, item_ids: list[int]) -> dict[int, list[dict]]:
    """Every annotator's serving of these items, oldest first: annotator, strategy, score, model_version,
    model_labels (the labels that version trained on), ranked_among and pool_size (the pool items that version
    ranked, of how many), selection_prob, labeled, served_at."""
    conn = reading(source)
    out: dict[int, list[dict]] = {i: [] for i in item_ids}
    # Servings of one millisecond: in the order written (PostgreSQL has no rowid; a row's ctid is its place).
    order = "s.ctid" if dialect(conn) == "postgresql" else "s.rowid"
    for chunk, marks in in_chunks(item_ids):
        for row in conn.execute(
                f"SELECT s.item_id, s.annotator, s.strategy, s.score, s.model_version, v.n_labels,"
                f" s.selection_prob, s.labeled, s.served_at, coalesce(v.ranked, v.pool_size), v.pool_size"
                f" FROM servings s"
                f" LEFT JOIN model_versions v ON v.project_id = s.project_id AND v.version = s.model_version"
                f" WHERE s.project_id = ? AND s.item_id IN ({marks}) ORDER BY s.served_at, {order}",
                (project_id, *chunk)):
            out[row[0]].append({"annotator": row[1], "strategy": row[2], "score": row[3], "model_version": row[4],
                                "model_labels": row[5], "selection_prob": row[6], "labeled": row[7],
                                "served_at": row[8], "ranked_among": row[9], "pool_size": row[10]})
    return out


def served_predictions(source, project_id: int) -> list[dict]:
    """What was served with a prediction, by item: item_id, version, strategy, predicted, confidence, and top
    (the first guesses as [label, probability] pairs; None for servings recorded before they were kept)."""
    rows = reading(source).execute(
        "SELECT item_id, model_version, strategy, predicted, confidence, top FROM served WHERE project_id = ?"
        " ORDER BY item_id", (project_id,))
    return [{"item_id": item_id, "version": version, "strategy": strategy, "predicted": json.loads(predicted),
             "confidence": confidence, "top": json.loads(top) if top else None}
            for item_id, version, strategy, predicted, confidence, top in rows]


def release_leases(db: Database, project_id: int, annotator: str, item_ids: list[int] | None = None) -> None:
    with db.write() as conn:
        lock_project(conn, project_id)
        if item_ids is None:
            conn.execute("DELETE FROM leases WHERE project_id = ? AND annotator = ?", (project_id, annotator))
        else:
            conn.executemany("DELETE FROM leases WHERE project_id = ? AND annotator = ? AND item_id = ?",
                             [(project_id, annotator, i) for i in item_ids])


def queue_predictions(source, project_id: int, item_ids: list[int]) -> dict[int, dict]:
    """What the current queue says about these items (those it holds): prediction, score, strategy, version."""
    conn = reading(source)
    out = {}
    for chunk, marks in in_chunks(item_ids):
        for row in conn.execute(
                f"SELECT item_id, score, strategy, model_version, prediction FROM queue"
                f" WHERE project_id = ? AND item_id IN ({marks})", (project_id, *chunk)):
            out[row["item_id"]] = {
                "prediction": json.loads(row["prediction"]) if row["prediction"] else None,
                "score": row["score"], "strategy": row["strategy"], "model_version": row["model_version"],
            }
    return out


def stop_set_ids(source, project_id: int, size: int) -> list[int]:
    """The stop set: the ``size`` items first in the import-time shuffle, so it stays fixed as labels come."""
    rows = reading(source).execute("SELECT id FROM items WHERE project_id = ? ORDER BY shuffle, id LIMIT ?",
                                   (project_id, size))
    return [r[0] for r in rows]
