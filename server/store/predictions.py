"""The latest model's prediction per item, as search shows it (``item_predictions``, and the ``queue``'s
predictions for the items it ranked)."""
from __future__ import annotations

import json

from .db import dialect, in_chunks, reading


def replace_item_predictions(conn, project_id: int, number: int, rows: list[dict]) -> None:
    """Inside an open write (store.replace_queue's): the labeled items' predictions of model ``number``,
    each ``{"item_id", "label", "confidence", "held_out"}``, in place of the previous model's."""
    conn.execute("DELETE FROM item_predictions WHERE project_id = ?", (project_id,))
    # Items deleted while the retrain ran are left out, not a foreign-key failure.
    values = ("?::bigint, ?::bigint, ?::bigint, ?::text, ?::double precision, ?::bigint"  # no column types a SELECT
              if dialect(conn) == "postgresql" else "?, ?, ?, ?, ?, ?")                # of parameters: tell them
    conn.executemany(
        "INSERT OR IGNORE INTO item_predictions (project_id, item_id, model_version, predicted, confidence, held_out)"
        f" SELECT {values} WHERE EXISTS (SELECT 1 FROM items WHERE id = ? AND project_id = ?)",
        [(project_id, r["item_id"], number, json.dumps(r["label"]), float(r["confidence"]), int(bool(r["held_out"])),
          r["item_id"], project_id) for r in rows])


def item_predictions(source, project_id: int, item_ids: list[int] | None = None) -> dict[int, dict]:
    """{item_id: {"label", "confidence", "model_version", "held_out"}} (a multi-label queue row has "labels"
    and "probs" instead of "label" and "confidence"). ``item_ids`` None: every labeled item with a prediction.

    A labeled item's prediction is the retrain's (item_predictions); an item labeled since, or not labeled,
    has the queue's, which the model made without its label (held_out). The newer model wins.
    """
    conn = reading(source)
    out: dict[int, dict] = {}

    def keep(item_id, prediction):
        old = out.get(item_id)
        if old is None or prediction["model_version"] > old["model_version"]:
            out[item_id] = prediction

    def from_queue(rows):
        for item_id, prediction, version in rows:
            if prediction and version is not None:
                keep(item_id, {**json.loads(prediction), "model_version": version, "held_out": True})

    def from_table(rows):
        for item_id, predicted, confidence, version, held_out in rows:
            keep(item_id, {"label": json.loads(predicted), "confidence": confidence, "model_version": version,
                           "held_out": bool(held_out)})

    table = "SELECT item_id, predicted, confidence, model_version, held_out FROM item_predictions WHERE project_id = ?"
    queue = "SELECT q.item_id, q.prediction, q.model_version FROM queue q"
    if item_ids is None:
        from_table(conn.execute(table, (project_id,)))
        from_queue(conn.execute(queue + " JOIN items i ON i.id = q.item_id WHERE q.project_id = ? AND i.n_labels > 0",
                                (project_id,)))
        return out
    for chunk, marks in in_chunks(item_ids):
        from_table(conn.execute(f"{table} AND item_id IN ({marks})", (project_id, *chunk)))
        from_queue(conn.execute(f"{queue} WHERE q.project_id = ? AND q.item_id IN ({marks})", (project_id, *chunk)))
    return out
