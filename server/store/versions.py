"""Model versions and the stop-set predictions they leave (``model_versions``, ``stop_predictions``)."""
from __future__ import annotations

import json

from .db import reading

VERSION_FIELDS = ("status", "model", "strategy", "n_labels", "accuracy", "accuracy_std", "accuracy_method",
                  "fit_seconds", "acquire_seconds", "total_seconds", "pool_size", "error", "estimate", "estimate_low",
                  "estimate_high", "kappa", "stop_signal", "ranked")


def record_model_version(conn, project_id: int, version: dict) -> int:
    """Inside an open write: the project's next version number, recorded with ``version``'s fields."""
    number = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE project_id = ?",
                          (project_id,)).fetchone()[0]
    fields = {k: version.get(k) for k in VERSION_FIELDS}
    fields["label_counts"] = json.dumps(version.get("label_counts") or {})
    fields["evaluation"] = json.dumps(version["evaluation"]) if version.get("evaluation") else None
    columns = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    conn.execute(f"INSERT INTO model_versions (project_id, version, {columns}) VALUES (?, ?, {marks})",
                 (project_id, number, *fields.values()))
    return number


def model_versions(source, project_id: int) -> list[dict]:
    rows = reading(source).execute("SELECT * FROM model_versions WHERE project_id = ? ORDER BY version",
                                   (project_id,))
    out = []
    for r in rows:
        v = dict(r)
        v["label_counts"] = json.loads(v["label_counts"] or "{}")
        v["evaluation"] = json.loads(v["evaluation"]) if v.get("evaluation") else None
        out.append(v)
    return out


def latest_version(source, project_id: int, status: str | None = None) -> dict | None:
    sql = "SELECT * FROM model_versions WHERE project_id = ?"
    args: list = [project_id]
    if status is not None:
        sql += " AND status = ?"
        args.append(status)
    row = reading(source).execute(sql + " ORDER BY version DESC LIMIT 1", args).fetchone()
    return dict(row) if row else None


def keep_stop_predictions(conn, project_id: int, number: int, n_labels: int, predictions: dict,
                          reference_labels: int | None) -> None:
    """Inside an open write: store a version's stop-set predictions, and drop those no later signal compares
    with. ``reference_labels``: the most labels the reference of this version's signal may have
    (assay.evaluation.stopping); ``n`` only grows, so every version older than that reference goes."""
    conn.execute("INSERT INTO stop_predictions (project_id, version, n_labels, predictions) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT (project_id, version) DO UPDATE SET n_labels = excluded.n_labels,"
                 " predictions = excluded.predictions", (project_id, number, n_labels, json.dumps(predictions)))
    if reference_labels is None:
        return
    oldest = conn.execute("SELECT max(version) FROM stop_predictions WHERE project_id = ? AND n_labels <= ?",
                          (project_id, reference_labels)).fetchone()[0]
    if oldest is not None:
        conn.execute("DELETE FROM stop_predictions WHERE project_id = ? AND version < ?", (project_id, oldest))


def stop_predictions(source, project_id: int, max_labels: int) -> dict | None:
    """The newest model version trained on at most ``max_labels`` labels with stop-set predictions:
    ``{"version", "n_labels", "predictions": {item_id: label}}``, or None."""
    row = reading(source).execute(
        "SELECT version, n_labels, predictions FROM stop_predictions WHERE project_id = ?"
        " AND n_labels <= ? ORDER BY version DESC LIMIT 1", (project_id, max_labels)).fetchone()
    if row is None:
        return None
    return {"version": row[0], "n_labels": row[1],
            "predictions": {int(k): v for k, v in json.loads(row[2]).items()}}


def set_featurizing(conn, project_id: int, done: int, total: int, now: float) -> None:
    """Inside an open write: how many of the project's items are featurized (embedded), of how many."""
    conn.execute("INSERT INTO featurizing (project_id, done, total, updated_at) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT (project_id) DO UPDATE SET done = excluded.done, total = excluded.total,"
                 " updated_at = excluded.updated_at", (project_id, int(done), int(total), now))


def featurizing(source, project_id: int) -> dict | None:
    """``{"done", "total"}`` as the project's last job left it, or None before its first job."""
    row = reading(source).execute("SELECT done, total FROM featurizing WHERE project_id = ?",
                                  (project_id,)).fetchone()
    return {"done": int(row[0]), "total": int(row[1])} if row else None


def unfinished_featurizing(source) -> list[int]:
    """Projects whose last job left part of their items unfeaturized."""
    return [r[0] for r in reading(source).execute("SELECT project_id FROM featurizing WHERE done < total"
                                                  " ORDER BY updated_at")]


def version_shares(source, project_id: int, versions) -> dict[int, dict]:
    """Per model version: ``{"ranked_among", "pool_size"}``, the pool items it ranked, of how many."""
    versions = sorted(int(v) for v in versions)
    if not versions:
        return {}
    marks = ", ".join("?" * len(versions))
    rows = reading(source).execute(f"SELECT version, ranked, pool_size FROM model_versions WHERE project_id = ?"
                                   f" AND version IN ({marks})", (project_id, *versions)).fetchall()
    return {r[0]: {"ranked_among": r[1] if r[1] is not None else r[2], "pool_size": r[2]} for r in rows}
