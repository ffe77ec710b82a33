"""The labeled set as Label Studio tasks, the JSON list Label Studio imports, streamed.

One task per labeled item: ``data`` is the item's fields (``$text``, ``$image`` in a labeling config),
``annotations`` holds every live answer as a ``choices`` result, the one the item's label comes from
marked ``ground_truth``, and ``meta`` keeps Assay's ids (and, asked for, the provenance). The labeling
config these tasks fit names its Choices ``label`` and its object ``text``, ``image`` or ``table``
after the project's item type (README: "Exports for training code").
"""
from __future__ import annotations

import json
from typing import Iterable, Iterator

from .export import export_id

FROM_NAME = "label"
TO_NAME = {"text": "text", "image": "image", "tabular": "table"}


def _choices(label) -> list[str]:
    return list(label) if isinstance(label, list) else [label]


def task(project: dict, rec: dict) -> dict:
    """One Label Studio task for an export record (resolved, with its item's ``answers``)."""
    to_name = TO_NAME.get(project["item_type"], "text")
    chosen = (rec["annotator"], rec["timestamp"], rec["source"])
    annotations = []
    for n, answer in enumerate(rec["answers"]):
        annotations.append({
            "result": [{"id": f"{rec['item_id']}-{n}", "from_name": FROM_NAME, "to_name": to_name,
                        "type": "choices", "value": {"choices": _choices(answer["label"])}}],
            "created_at": answer["created_at"],
            "was_cancelled": False,
            "ground_truth": (answer["annotator"], answer["created_at"], answer["source"]) == chosen,
        })
    meta = {"assay_id": export_id(rec), "assay_item_id": rec["item_id"],
            "annotators": [a["annotator"] for a in rec["answers"]], "label_method": rec.get("method")}
    if "provenance" in rec:
        meta["provenance"] = rec["provenance"]
    return {"data": rec["data"], "annotations": annotations, "meta": meta}


def stream(project: dict, records: Iterable[dict]) -> Iterator[str]:
    """A JSON list, a task per line, written as the records come."""
    yield "["
    sep = "\n"
    for rec in records:
        yield sep + json.dumps(task(project, rec), ensure_ascii=False)
        sep = ",\n"
    yield "\n]\n"
