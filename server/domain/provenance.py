"""How each exported label came to be: who answered, and what put the item in front of them.

An item's own columns describe its first serving: the pick that brought it into the labeled set, which is
what a correction for the selection (weighing by 1 / ``selection_prob``) needs. ``answers`` lists every
live answer with its annotator's own serving, since with overlap each annotator may have got the item
from a different pick. Imported labels and reviews were never served: their serving fields are null. An item
labeled because its exact duplicate was (store.add_annotation's ``twins``) was never served either: its answers'
``source`` is ``twin of item N``, and so is its own ``strategy``.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from assay import store

# What a serving says, as export names it (the store's "labeled" is the labels the project had then).
SERVING_FIELDS = ("strategy", "score", "model_version", "model_labels", "ranked_among", "pool_size", "selection_prob",
                  "labels_when_served", "served_at")
# suggested / accepted (issue 28): the label the page suggested with this answer (null: none shown) and whether
# the answer is that label: an answer given with a suggestion in view may lean on it.
PROVENANCE_COLUMNS = (*SERVING_FIELDS, "answers", "suggested", "accepted")
ANSWER_FIELDS = ("annotator", "label", "timestamp", "source", *SERVING_FIELDS, "suggested", "accepted")


def _serving(row: dict | None) -> dict:
    if row is None:
        return dict.fromkeys(SERVING_FIELDS)
    return {"strategy": row["strategy"], "score": row["score"], "model_version": row["model_version"],
            "model_labels": row["model_labels"], "ranked_among": row["ranked_among"],
            "pool_size": row["pool_size"], "selection_prob": row["selection_prob"],
            "labels_when_served": row["labeled"], "served_at": row["served_at"]}


def with_provenance(db, project_id: int, records: Iterable[dict], item_ids: list[int]) -> Iterator[dict]:
    """``records`` (export rows with their item's ``answers``) each with a ``provenance`` dict:
    the fields of PROVENANCE_COLUMNS."""
    servings = store.item_servings(db, project_id, item_ids)
    for rec in records:
        served = servings.get(rec["item_id"], [])
        by_annotator = {s["annotator"]: s for s in served}
        answers = [{"annotator": a["annotator"], "label": a["label"], "timestamp": a["created_at"],
                    "source": a["source"],
                    **_serving(by_annotator.get(a["annotator"]) if a["source"] == "annotator" else None),
                    "suggested": a.get("suggested"), "accepted": a.get("accepted")}
                   for a in rec["answers"]]
        own = _serving(served[0] if served else None)
        if not served and str(rec.get("source") or "").startswith("twin of item"):
            own["strategy"] = rec["source"]  # never served: labeled as an exact duplicate of that item
        yield {**rec, "provenance": {**own, "answers": answers, "suggested": rec.get("suggested"),
                                     "accepted": rec.get("accepted")}}
