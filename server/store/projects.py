"""Projects and their counts (the ``projects`` and ``project_counts`` tables)."""
from __future__ import annotations

import json

from assay.errors import Conflict, NotFound

from .db import Database, is_unique_violation, reading

PROJECT_FIELDS = ("name", "labels", "multi_label", "item_type", "strategy", "strategy_params", "model",
                  "model_params", "featurizer", "batch_size", "retrain_every", "overlap", "keys", "audit_share",
                  "target_accuracy", "label_descriptions")
JSON_FIELDS = ("labels", "strategy_params", "model_params", "keys", "label_descriptions")


def _project_values(fields: dict) -> dict:
    # A JSON field set to None is stored as NULL (keys: the default), not as the text "null".
    return {k: (json.dumps(v) if k in JSON_FIELDS and v is not None else v)
            for k, v in fields.items() if k in PROJECT_FIELDS}


def _project_row(row) -> dict:
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
        taken = Conflict(f"a project named {fields['name']!r} already exists; pick another name")
        if conn.execute("SELECT 1 FROM projects WHERE name = ?", (fields["name"],)).fetchone():
            raise taken
        try:
            cur = conn.execute(f"INSERT INTO projects ({columns}) VALUES ({marks})", tuple(values.values()))
        except Exception as exc:
            if is_unique_violation(exc):  # another process took the name since the check
                raise taken from exc
            raise
        return cur.lastrowid


def update_project(db: Database, project_id: int, fields: dict, *, unless_items: str | None = None) -> None:
    """Change a project's settings. With ``unless_items`` (the refusal's message), only while the project has no
    items and no import is running, checked in the same transaction: an import begins in its own (insert_items)."""
    values = _project_values(fields)
    if not values:
        return
    assignments = ", ".join(f"{k} = ?" for k in values)
    with db.write() as conn:
        if unless_items is not None and conn.execute(
                "SELECT 1 FROM items WHERE project_id = ? UNION ALL"
                " SELECT 1 FROM imports WHERE project_id = ? AND finished_at IS NULL LIMIT 1",
                (project_id, project_id)).fetchone() is not None:
            raise Conflict(unless_items)
        conn.execute(f"UPDATE projects SET {assignments} WHERE id = ?", (*values.values(), project_id))


def delete_project(db: Database, project_id: int, chunk: int = 2000) -> dict:
    """Delete a project with its items, answers, queue, leases and model versions; returns what went.

    Items go in chunks, each its own transaction, so labels posted to other
    projects meanwhile never wait long for the writer. A crash part-way leaves
    the project with fewer items, and deleting it again finishes the job.
    """
    gone = counts(db, project_id)
    while True:
        with db.write() as conn:
            cur = conn.execute("DELETE FROM items WHERE id IN (SELECT id FROM items WHERE project_id = ? LIMIT ?)",
                               (project_id, chunk))
            if cur.rowcount == 0:
                conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))
                return gone


def get_project(source, key) -> dict:
    """A project by id or by name."""
    conn = reading(source)
    row = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        if int(key) < 2**63:
            row = conn.execute("SELECT * FROM projects WHERE id = ?", (int(key),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM projects WHERE name = ?", (str(key),)).fetchone()
    if row is None:
        raise NotFound(f"no project {key!r}; `assay create-project` or POST /api/projects makes one")
    return _project_row(row)


def list_projects(source) -> list[dict]:
    rows = reading(source).execute(
        """
        SELECT p.*,
               coalesce(c.items, 0) AS n_items, coalesce(c.labeled, 0) AS n_labeled
        FROM projects p LEFT JOIN project_counts c ON c.project_id = p.id ORDER BY p.id
        """
    ).fetchall()
    return [_project_row(row) for row in rows]


def counts(source, project_id: int) -> dict:
    """Items, labeled, skipped and unlabeled (nobody answered) of a project: one row, kept by triggers."""
    row = reading(source).execute(
        "SELECT items, labeled, skipped, untouched, revision FROM project_counts WHERE project_id = ?",
        (project_id,)).fetchone()
    if row is None:
        return {"total": 0, "labeled": 0, "skipped": 0, "unlabeled": 0, "revision": 0}
    return {"total": row[0], "labeled": row[1], "skipped": row[2], "unlabeled": row[3], "revision": row[4]}
