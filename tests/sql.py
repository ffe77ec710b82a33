"""Direct reads of the SQLite file that only tests need (the product has no use for them, so the store
does not offer them)."""
from __future__ import annotations


def count_items(db, project_id: int) -> int:
    return db.reader.execute("SELECT count(*) FROM items WHERE project_id = ?", (project_id,)).fetchone()[0]


def queue_rows(db, project_id: int) -> list[dict]:
    rows = db.reader.execute("SELECT * FROM queue WHERE project_id = ? ORDER BY rank", (project_id,)).fetchall()
    return [dict(r) for r in rows]
