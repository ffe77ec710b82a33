"""Which answer gives an item its label: a reviewer's adjudication, else the majority, ties to the latest.

The retrain trains on these labels, and export, search and the label counts (assay.domain) read them through
here too, so that a model learns the labels an export ships.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterator

from assay import store


def resolve(annotations: list[dict]) -> dict | None:
    """The label an item gets: a reviewer's adjudication, else the majority, ties to the latest.

    ``annotations`` are the item's live, non-skipped answers, oldest first, each
    {"label", "annotator", "source", "created_at"}. Returns the chosen one with
    "method" ("adjudicated", "majority" or "single"), or None.
    """
    if not annotations:
        return None
    reviews = [a for a in annotations if a["source"] == "review"]
    if reviews:
        return {**reviews[-1], "method": "adjudicated"}
    if len(annotations) == 1:
        return {**annotations[0], "method": "single"}

    def key(label):
        return tuple(label) if isinstance(label, list) else label

    counts = Counter(key(a["label"]) for a in annotations)
    best = max(counts.values())
    for a in reversed(annotations):  # the latest among the most frequent
        if counts[key(a["label"])] == best:
            return {**a, "method": "majority"}
    return None


def iter_resolved(db, project_id: int) -> Iterator[tuple[int, dict]]:
    """(item_id, chosen answer) per labeled item, in id order: adjudicated, else majority, else the only one."""
    for groups in store.answer_pages(db, project_id):
        for item_id, answers in groups:
            chosen = resolve(answers)
            if chosen is not None:
                yield item_id, chosen


def labeled_items(db, project_id: int) -> list[tuple[int, object]]:
    """(item_id, label) per labeled item: the label the item gets (see iter_resolved)."""
    return [(item_id, chosen["label"]) for item_id, chosen in iter_resolved(db, project_id)]
