"""The labeled set as Parquet, and as a Hugging Face ``datasets`` folder, written one record batch at a time.

Training code reads these directly: each item field is a column of its own (``text``, say), typed from the
JSON types the labeled items hold, next to ``label`` (``labels`` for multi-label projects). A field named
like one of export's own columns (an imported ``label``) is written as ``data.<field>``, so it is never
taken for the answer. pyarrow is a dependency; datasets, for the hf folder only, is optional (``pip install 'assay[export]'``).
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Iterable, Iterator

from assay import store
from assay.errors import BadRequest

from .export import DATA_PREFIX, EXPORT_BATCH, _row
from .provenance import SERVING_FIELDS

_OWN = ("id", "item_id", "label", "labels", "annotator", "timestamp", *SERVING_FIELDS, "answers", "suggested",
        "accepted")


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the submodule is what writes)
    except ImportError:
        raise BadRequest("Parquet and Hugging Face exports need pyarrow: pip install pyarrow") from None
    return pyarrow


def _field_type(pa, kinds: set[str]):
    kinds = kinds - {"null"}
    if kinds and kinds <= {"integer"}:
        return pa.int64()
    if kinds and kinds <= {"integer", "real"}:
        return pa.float64()
    if kinds and kinds <= {"true", "false"}:
        return pa.bool_()
    return pa.string()  # text, or mixed / nested values as their JSON


def data_columns(db, project_id: int) -> list[tuple[str, str, object]]:
    """(field, column name, Arrow type) per item field of the labeled items, in export's field order."""
    pa = _pyarrow()
    types = store.export_data_types(db, project_id)
    return [(key, DATA_PREFIX + key if key in _OWN else key, _field_type(pa, types[key]))
            for key in store.export_data_keys(db, project_id)]


def schema(project: dict, columns, provenance: bool = False, label_index: bool = False):
    """The file's schema. ``label_index``: labels as their index in the project's labels (ClassLabel's)."""
    pa = _pyarrow()
    label_type = pa.int64() if label_index else pa.string()
    fields = [pa.field("id", pa.string()), pa.field("item_id", pa.int64()),
              *(pa.field(name, kind) for _, name, kind in columns),
              pa.field("labels", pa.list_(label_type)) if project["multi_label"] else pa.field("label", label_type),
              pa.field("annotator", pa.string()), pa.field("timestamp", pa.string())]
    if provenance:
        serving = [pa.field("strategy", pa.string()), pa.field("score", pa.float64()),
                   pa.field("model_version", pa.int64()), pa.field("model_labels", pa.int64()),
                   pa.field("ranked_among", pa.int64()), pa.field("pool_size", pa.int64()),
                   pa.field("selection_prob", pa.float64()), pa.field("labels_when_served", pa.int64()),
                   pa.field("served_at", pa.string())]
        answer_label = pa.list_(pa.string()) if project["multi_label"] else pa.string()
        suggestion = [pa.field("suggested", pa.string()), pa.field("accepted", pa.bool_())]  # issue 28
        answer = pa.struct([pa.field("annotator", pa.string()), pa.field("label", answer_label),
                            pa.field("timestamp", pa.string()), pa.field("source", pa.string()), *serving,
                            *suggestion])
        fields += [*serving, pa.field("answers", pa.list_(answer)), *suggestion]
    return pa.schema(fields)


def _cell(value, kind, pa):
    if value is None or kind != pa.string() or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def record_batches(project: dict, records: Iterable[dict], columns, provenance: bool = False,
                   label_index: bool = False) -> Iterator:
    """The export's rows as Arrow record batches of EXPORT_BATCH rows: memory bounded by one batch."""
    pa = _pyarrow()
    target = schema(project, columns, provenance, label_index)
    index = {name: i for i, name in enumerate(project["labels"])}
    rows: list[dict] = []
    for rec in records:
        row = _row(project, rec)
        data = row.pop("data")
        for key, name, kind in columns:
            row[name] = _cell(data.get(key), kind, pa)
        if label_index:
            if project["multi_label"]:
                row["labels"] = [index[v] for v in row["labels"]]
            else:
                row["label"] = index[row["label"]]
        rows.append(row)
        if len(rows) >= EXPORT_BATCH:
            yield pa.RecordBatch.from_pylist(rows, schema=target)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=target)


def write_parquet(sink, project: dict, records: Iterable[dict], columns, provenance: bool = False,
                  label_index: bool = False) -> None:
    """Parquet into ``sink`` (a path or a writable binary file), one row group per record batch."""
    pa = _pyarrow()
    target = schema(project, columns, provenance, label_index).with_metadata(_metadata(project))
    with pa.parquet.ParquetWriter(sink, target) as writer:
        for batch in record_batches(project, records, columns, provenance, label_index):
            if batch.num_rows:
                writer.write_batch(batch)


def _metadata(project: dict) -> dict:
    """The project's labels, in order, in the file's metadata: what a label index or a ClassLabel needs."""
    return {b"assay.labels": json.dumps(project["labels"]).encode(),
            b"assay.multi_label": b"true" if project["multi_label"] else b"false"}


class _Chunks:
    """A write-only binary file whose bytes are taken out as they come (an HTTP response's body)."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def stream_parquet(project: dict, records: Iterable[dict], columns, provenance: bool = False) -> Iterator[bytes]:
    """The Parquet file's bytes, a row group at a time: an HTTP response streams them as they are written."""
    pa = _pyarrow()
    sink = _Chunks()
    target = schema(project, columns, provenance).with_metadata(_metadata(project))
    writer = pa.parquet.ParquetWriter(pa.PythonFile(sink, mode="w"), target)
    try:
        for batch in record_batches(project, records, columns, provenance):
            if batch.num_rows:
                writer.write_batch(batch)
                yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def features(project: dict, columns, provenance: bool = False):
    """The ``datasets`` Features: the Arrow schema's, with the labels as ClassLabel (named by the project)."""
    import datasets

    feats = datasets.Features.from_arrow_schema(schema(project, columns, provenance, label_index=True))
    label = datasets.ClassLabel(names=list(project["labels"]))
    if project["multi_label"]:
        feats["labels"] = datasets.List(label) if hasattr(datasets, "List") else datasets.Sequence(label)
    else:
        feats["label"] = label
    return feats


def write_hf(folder: str, project: dict, records: Iterable[dict], columns, provenance: bool = False) -> None:
    """A folder ``datasets.load_from_disk`` opens. The rows go to a Parquet file first (streamed), which
    ``datasets`` converts to its Arrow files batch by batch; nothing holds the whole set in memory."""
    try:
        import datasets
    except ImportError:
        raise BadRequest("the hf export needs the datasets package: pip install 'assay[export]'") from None
    if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
        raise BadRequest(f"{folder} exists and is not an empty folder: give a new folder for the hf export")
    with tempfile.TemporaryDirectory(prefix="assay-hf-") as tmp:
        parquet = os.path.join(tmp, "labels.parquet")
        write_parquet(parquet, project, records, columns, provenance, label_index=True)
        dataset = datasets.Dataset.from_parquet(parquet, features=features(project, columns, provenance),
                                                cache_dir=os.path.join(tmp, "cache"))
        dataset.save_to_disk(folder)
        del dataset  # its memory map is in ``tmp``, removed next
