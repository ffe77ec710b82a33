"""What the review API and the review page show: agreement, and the items people disagree on."""
from __future__ import annotations

from assay import store
from assay.learning.resolution import resolve

from . import agreement


def summary(db, project: dict) -> dict:
    return agreement.summarize(store.agreement_units(db, project["id"]), project["labels"], project["multi_label"])


def disputed(db, project: dict, ids: list[int]) -> list[dict]:
    """Each item with its annotators' answers, its adjudicated label (or None) and the label export gives it."""
    answers = store.item_answers(db, project["id"], ids)
    data = store.item_data(db, ids)
    out = []
    for item_id in ids:
        chosen = resolve(answers[item_id])
        out.append({"id": item_id, "data": data[item_id],
                    "annotations": [a for a in answers[item_id] if a["source"] == "annotator"],
                    "adjudicated": chosen["label"] if chosen and chosen["method"] == "adjudicated" else None,
                    "resolved": chosen["label"] if chosen else None})
    return out
