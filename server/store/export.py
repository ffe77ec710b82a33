"""The rows export writes: an item's data and external id with the answer it is exported with."""
from __future__ import annotations

from typing import Iterator

from .db import dialect, reading
from .items import external_ids, item_data


def export_rows(source, pairs: list[tuple[int, dict]]) -> Iterator[dict]:
    """One export row per (item_id, answer) pair, in their order; ``answer`` as store.answer_pages gives it,
    with the ``method`` that chose it when there is one."""
    if not pairs:
        return
    ids = [i for i, _ in pairs]
    data = item_data(source, ids)
    external = external_ids(source, ids)
    for item_id, answer in pairs:
        yield {"item_id": item_id, "external_id": external[item_id], "data": data[item_id], "label": answer["label"],
               "annotator": answer["annotator"], "timestamp": answer["created_at"],
               "source": answer["source"], "method": answer.get("method"),
               "suggested": answer.get("suggested"), "accepted": answer.get("accepted")}


def export_data_keys(source, project_id: int) -> list[str]:
    """Every data field of the labeled items, ordered by the first item that has it, then its place there."""
    conn = reading(source)
    each = "jsonb_each(i.data::jsonb)" if dialect(conn) == "postgresql" else "json_each(i.data)"
    firsts = conn.execute(
        f"SELECT j.key, min(i.id) FROM items i, {each} j WHERE i.project_id = ? AND i.n_labels > 0"
        " GROUP BY j.key",
        (project_id,),
    ).fetchall()
    first_data = item_data(conn, sorted({item_id for _, item_id in firsts}))

    def place(pair):
        key, item_id = pair
        return item_id, list(first_data[item_id]).index(key)

    return [key for key, _ in sorted(firsts, key=place)]


# SQLite's json_each type names from jsonb's: a number without a point or exponent is an integer.
_PG_TYPE = ("CASE jsonb_typeof(j.value) WHEN 'string' THEN 'text' WHEN 'boolean' THEN j.value::text"
            " WHEN 'number' THEN CASE WHEN j.value::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END"
            " ELSE jsonb_typeof(j.value) END")


def export_data_types(source, project_id: int) -> dict[str, set[str]]:
    """The JSON types (SQLite's json_each names: text, integer, real, true, false, null, array, object) each
    data field of the labeled items takes, for a columnar export's schema."""
    conn = reading(source)
    sql = ("SELECT j.key, j.type FROM items i, json_each(i.data) j WHERE i.project_id = ? AND i.n_labels > 0"
           " GROUP BY j.key, j.type")
    if dialect(conn) == "postgresql":
        sql = f"SELECT key, type FROM (SELECT j.key, {_PG_TYPE} AS type FROM items i, jsonb_each(i.data::jsonb) j" \
              " WHERE i.project_id = ? AND i.n_labels > 0) t GROUP BY key, type"
    rows = conn.execute(sql, (project_id,)).fetchall()
    types: dict[str, set[str]] = {}
    for key, kind in rows:
        types.setdefault(key, set()).add(kind)
    return types
