"""Writing the labeled set as JSONL or CSV, one row per labeled item, streamed."""
from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

FORMATS = ("jsonl", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _row(project: dict, rec: dict) -> dict:
    out = {"id": rec["external_id"] if rec["external_id"] is not None else str(rec["item_id"]),
           "item_id": rec["item_id"], "data": rec["data"]}
    if project["multi_label"]:
        out["labels"] = rec["label"] if isinstance(rec["label"], list) else [rec["label"]]
    else:
        out["label"] = rec["label"]
    out["annotator"] = rec["annotator"]
    out["timestamp"] = rec["timestamp"]
    return out


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def iter_jsonl(project: dict, records: Iterable[dict]) -> Iterator[str]:
    for rec in records:
        yield json.dumps(_row(project, rec), ensure_ascii=False) + "\n"


def iter_csv(project: dict, records: Iterable[dict]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    label_key = "labels" if project["multi_label"] else "label"
    data_keys: list[str] | None = None
    for rec in records:
        row = _row(project, rec)
        if data_keys is None:
            # Columns come from the first row; text projects always lead with "text".
            data_keys = list(row["data"].keys())
            writer.writerow(["id", "item_id", *data_keys, label_key, "annotator", "timestamp"])
        label = "|".join(row["labels"]) if project["multi_label"] else row["label"]
        values = [row["id"], row["item_id"], *(row["data"].get(k) for k in data_keys), label, row["annotator"],
                  row["timestamp"]]
        writer.writerow([safe_cell(v) if not isinstance(v, (int, float)) else v for v in values])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if data_keys is None:
        writer.writerow(["id", "item_id", "text", label_key, "annotator", "timestamp"])
        yield buf.getvalue()


def stream(project: dict, records: Iterable[dict], fmt: str) -> Iterator[str]:
    return iter_csv(project, records) if fmt == "csv" else iter_jsonl(project, records)
