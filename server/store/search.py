"""Finding a project's items by their text and their answers (``items``, ``annotations``)."""
from __future__ import annotations

import json

from .db import dialect, reading


def _strings(value):
    """The values a text search looks at: strings and numbers anywhere in an item's data, not its keys."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def _text_match(data: str, folded: str, escaped: str) -> int:
    # Items are stored as json.dumps(ensure_ascii=False), and case folding and JSON escaping both work
    # character by character, so every match holds the escaped needle: a cheap test on the raw text that
    # passes over most rows without parsing them. It also matches keys and escapes: parsing settles those.
    if escaped not in data.casefold():
        return 0
    return int(any(folded in s.casefold() for s in _strings(json.loads(data))))


def search_items(source, project_id: int, *, text: str | None = None, label=None, annotator: str | None = None,
                 among: list[int] | None = None) -> list[int]:
    """The ids, in id order, of the project's items that match every filter given.

    ``text``: a substring of any of the item's values, ignoring case (Unicode case folding).
    ``label``: a live answer carries that label (one of its labels, multi-label); with ``annotator``,
    that annotator's answer does. ``annotator`` alone: the annotator labeled the item (skips do not count).
    ``among``: only these items.

    Every item of the project is looked at (no index serves a substring); callers page the ids.
    """
    conn = reading(source)
    pg = dialect(conn) == "postgresql"
    sql = ["SELECT i.id FROM items i WHERE i.project_id = ?"]
    args: list = [project_id]
    if among is not None:
        sql.append("AND i.id = ANY(?)" if pg else "AND i.id IN (SELECT value FROM json_each(?))")
        args.append(sorted(set(among)) if pg else json.dumps(sorted(set(among))))
    if label is not None or annotator is not None:
        answer = ["SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.undone_at IS NULL AND a.skipped = 0"]
        if annotator is not None:
            answer.append("AND a.annotator = ?")
            args.append(annotator)
        if label is not None:
            # Labels are stored as JSON: a string, or a list of them (multi-label).
            if pg:
                answer.append("AND (a.label = ? OR (jsonb_typeof(a.label::jsonb) = 'array' AND EXISTS (SELECT 1"
                              " FROM jsonb_array_elements_text(a.label::jsonb) AS e(value) WHERE e.value = ?)))")
            else:
                answer.append("AND (a.label = ? OR (json_type(a.label) = 'array'"
                              " AND EXISTS (SELECT 1 FROM json_each(a.label) WHERE json_each.value = ?)))")
            args.extend([json.dumps(label), label])
        sql.append(f"AND EXISTS ({' '.join(answer)})")
    if text and pg:
        # PostgreSQL cannot call this process's Python: the rows the other filters leave are matched here.
        folded, escaped = text.casefold(), json.dumps(text.casefold(), ensure_ascii=False)[1:-1]
        rows = conn.execute(" ".join(sql).replace("SELECT i.id", "SELECT i.id, i.data", 1) + " ORDER BY i.id", args)
        return [r[0] for r in rows if _text_match(r[1], folded, escaped)]
    if text:
        folded = text.casefold()
        conn.create_function("assay_text_match", 3, _text_match, deterministic=True)
        sql.append("AND assay_text_match(i.data, ?, ?)")
        args.extend([folded, json.dumps(folded, ensure_ascii=False)[1:-1]])
    return [r[0] for r in conn.execute(" ".join(sql) + " ORDER BY i.id", args)]


def page_items(source, item_ids: list[int]) -> list[dict]:
    """id, external_id and data of these items, in the order given."""
    conn = reading(source)
    if dialect(conn) == "postgresql":
        found = conn.execute("SELECT id, external_id, data FROM items WHERE id = ANY(?)", (list(item_ids),))
    else:
        found = conn.execute("SELECT id, external_id, data FROM items WHERE id IN (SELECT value FROM json_each(?))",
                             (json.dumps(item_ids),))
    rows = {r[0]: {"id": r[0], "external_id": r[1], "data": json.loads(r[2])} for r in found}
    return [rows[i] for i in item_ids if i in rows]
