"""Writing the labeled set, one row per labeled item, streamed: JSONL and CSV here; Parquet and a Hugging Face
folder in columnar.py, Label Studio tasks in labelstudio.py."""
from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

from assay import store
from assay.errors import BadRequest
from assay.learning.resolution import resolve

from .provenance import PROVENANCE_COLUMNS, with_provenance

FORMATS = ("jsonl", "csv", "parquet", "hf", "labelstudio")
# A Hugging Face dataset is a folder: the CLI writes it; over HTTP, fetch the Parquet and load that.
HTTP_FORMATS = ("jsonl", "csv", "parquet", "labelstudio")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


EXPORT_BATCH = 2000  # items whose data is read in one go


def check_format(fmt: str, over_http: bool = False) -> str:
    allowed = HTTP_FORMATS if over_http else FORMATS
    if fmt not in allowed:
        hint = " (hf writes a folder: use `assay export --format hf -o FOLDER`, or load the parquet export" \
               " with datasets.load_dataset(\"parquet\", ...))" if fmt == "hf" else ""
        raise BadRequest(f"unknown export format {fmt!r}: use one of {', '.join(allowed)}{hint}")
    return fmt


def iter_export(db, project_id: int, every_annotation: bool = False, provenance: bool = False) -> Iterator[dict]:
    """One row per labeled item with the label it gets, or with ``every_annotation`` one row per answer.

    Each record carries its item's live ``answers`` (oldest first); with ``provenance``, where each
    came from (provenance.with_provenance).
    """
    for groups in store.answer_pages(db, project_id, EXPORT_BATCH):
        if every_annotation:
            pairs = [(item_id, a) for item_id, answers in groups for a in answers]
        else:
            pairs = [(item_id, chosen) for item_id, answers in groups if (chosen := resolve(answers)) is not None]
        answers_of = dict(groups)
        records = ({**rec, "answers": answers_of[rec["item_id"]]} for rec in store.export_rows(db, pairs))
        yield from with_provenance(db, project_id, records, list(answers_of)) if provenance else records


def export_id(rec: dict) -> str:
    return rec["external_id"] if rec["external_id"] is not None else str(rec["item_id"])


def _row(project: dict, rec: dict) -> dict:
    out = {"id": export_id(rec), "item_id": rec["item_id"], "data": rec["data"]}
    if project["multi_label"]:
        out["labels"] = rec["label"] if isinstance(rec["label"], list) else [rec["label"]]
    else:
        out["label"] = rec["label"]
    out["annotator"] = rec["annotator"]
    out["timestamp"] = rec["timestamp"]
    if "provenance" in rec:
        out.update(rec["provenance"])
    return out


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def iter_jsonl(project: dict, records: Iterable[dict]) -> Iterator[str]:
    for rec in records:
        yield json.dumps(_row(project, rec), ensure_ascii=False) + "\n"


DATA_PREFIX = "data."


def csv_columns(project: dict, data_keys: Iterable[str], provenance: bool = False) -> list[str]:
    """The CSV header: export's own columns, then every item field as ``data.<field>``.

    The prefix keeps an item field named like one of export's own columns (an
    imported ``label`` say) from ever being mistaken for the answer; it is the
    name ``pandas.json_normalize`` gives the JSONL's nested ``data`` too.
    """
    label_key = "labels" if project["multi_label"] else "label"
    return ["id", "item_id", *(DATA_PREFIX + k for k in data_keys), label_key, "annotator", "timestamp",
            *(PROVENANCE_COLUMNS if provenance else ())]


def _csv_value(value):
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float)):
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        return safe_cell(value)
    return value


def iter_csv(project: dict, records: Iterable[dict], data_keys: Iterable[str],
             provenance: bool = False) -> Iterator[str]:
    """CSV rows under a header made from ``data_keys``: every field any exported item has, in a stable order.

    The caller collects the keys first (one cheap pass in the store), so a field
    only later rows carry is never dropped while the rows still stream.
    """
    data_keys = list(data_keys)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(c) for c in csv_columns(project, data_keys, provenance)])
    yield buf.getvalue()
    for rec in records:
        buf.seek(0)
        buf.truncate()
        row = _row(project, rec)
        label = "|".join(row["labels"]) if project["multi_label"] else row["label"]
        values = [row["id"], row["item_id"], *(row["data"].get(k) for k in data_keys), label, row["annotator"],
                  row["timestamp"], *(row[c] for c in (PROVENANCE_COLUMNS if provenance else ()))]
        writer.writerow([_csv_value(v) for v in values])
        yield buf.getvalue()


def stream(project: dict, records: Iterable[dict], fmt: str, data_keys: Iterable[str] = ("text",),
           provenance: bool = False) -> Iterator[str]:
    return iter_csv(project, records, data_keys, provenance) if fmt == "csv" else iter_jsonl(project, records)
