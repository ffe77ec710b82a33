"""Finding a project's items: by text, label, annotator, and where the model disagrees with the label.

The last is the quickest way to find label errors: the model's prediction for a labeled item is made
without that item's label (out of fold, store.predictions), so a confident disagreement is worth a look.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from assay import store
from assay.errors import BadRequest, Forbidden
from assay.learning.resolution import resolve

PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_TEXT = 200
MAX_PAGE = 1_000_000
PARAMETERS = ("q", "label", "annotator", "disagree", "page", "per_page")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ItemQuery:
    text: str | None = None
    label: str | None = None
    annotator: str | None = None
    disagree: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args: Mapping[str, str], project: dict) -> "ItemQuery":
        """The query a request's parameters ask for, or BadRequest saying which one is wrong and how."""
        unknown = sorted(set(args) - set(PARAMETERS))
        if unknown:
            raise BadRequest(f"unknown parameter(s) {unknown}; the filters are {list(PARAMETERS)}")
        text = args.get("q") or None
        if text is not None and len(text) > MAX_TEXT:
            raise BadRequest(f"q is {len(text)} characters long; search for at most {MAX_TEXT}")
        label = args.get("label") or None
        if label is not None and label not in project["labels"]:
            raise BadRequest(f"unknown label {label!r}; this project's labels are {project['labels']}")
        annotator = args.get("annotator") or None
        if annotator is not None and len(annotator) > MAX_TEXT:
            raise BadRequest(f"annotator must be an annotator's name (at most {MAX_TEXT} characters)")
        flag = args.get("disagree", "").strip().lower()
        if flag not in _TRUE + _FALSE:
            raise BadRequest("disagree must be 1 (only items whose label the model disagrees with) or 0")
        disagree = flag in _TRUE
        if disagree and project["multi_label"]:
            raise BadRequest("disagree works on single-label projects: a multi-label project's model predicts "
                             "each label apart; filter by label instead")
        return cls(text=text, label=label, annotator=annotator, disagree=disagree,
                   page=_integer(args, "page", 1, MAX_PAGE, 1), per_page=_integer(args, "per_page", 1, MAX_PER_PAGE,
                                                                                PER_PAGE))


def _integer(args: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer between {low} and {high}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be an integer between {low} and {high}")
    return value


def _label(answers: list[dict], viewer: str | None):
    """The item's label as ``viewer`` may see it: their own (None: everyone's, resolved as export does)."""
    if viewer is not None:
        mine = [a for a in answers if a["annotator"] == viewer]
        return mine[-1]["label"] if mine else None
    chosen = resolve(answers)
    return chosen["label"] if chosen else None


def _disagrees(label, prediction: dict | None) -> bool | None:
    if label is None or isinstance(label, list) or not prediction or "label" not in prediction:
        return None
    return prediction["label"] != label


def _disagreeing(db, project_id: int, viewer: str | None) -> dict[int, float]:
    """{item_id: the prediction's confidence} of the labeled items whose latest prediction differs from their
    label. Bounded by the labeled items, which people made one at a time; the label is resolved here, as
    export resolves it."""
    predictions = store.item_predictions(db, project_id)
    answers = store.item_answers(db, project_id, list(predictions))
    return {i: p.get("confidence") or 0.0 for i, p in predictions.items() if _disagrees(_label(answers[i], viewer), p)}


def search(db, project: dict, query: ItemQuery, viewer: str | None = None) -> dict:
    """One page of the items matching ``query`` (in id order; with ``disagree``, the most confident
    disagreement first), each with its label, answers and the model's prediction.

    ``viewer``: an annotator who may see only their own answers (None: someone who sees everyone's).
    Their label and annotator filters apply to their own answers, and disagreement to their own labels.
    """
    if viewer is not None and query.annotator not in (None, viewer):
        raise Forbidden(f"{viewer} may see only their own labels; search with annotator={viewer}, or ask the "
                        "project's owner for the reviewer role")
    project_id = project["id"]
    among = _disagreeing(db, project_id, viewer) if query.disagree else None
    answered_by = query.annotator or (viewer if query.label is not None else None)
    ids = store.search_items(db, project_id, text=query.text, label=query.label, annotator=answered_by,
                             among=None if among is None else list(among))
    if among is not None:
        # The surest disagreements first: a confident model contradicting a label is the likeliest error.
        ids.sort(key=lambda i: (-among[i], i))
    start = (query.page - 1) * query.per_page
    page_ids = ids[start:start + query.per_page]
    answers = store.item_answers(db, project_id, page_ids)
    predictions = store.item_predictions(db, project_id, page_ids)
    items = []
    for row in store.page_items(db, page_ids):
        shown = [a for a in answers[row["id"]] if viewer is None or a["annotator"] == viewer]
        label = _label(answers[row["id"]], viewer)
        prediction = predictions.get(row["id"])
        items.append({**row, "label": label, "annotations": shown, "prediction": prediction,
                      "disagrees": _disagrees(label, prediction)})
    return {"items": items, "total": len(ids), "page": query.page, "per_page": query.per_page,
            "pages": -(-len(ids) // query.per_page)}


def reopen(db, project: dict, item_id: int, annotator: str) -> dict:
    """An item as the labeling page re-opens it for ``annotator``: its data, their label on it, the model's
    prediction, and why they may not answer it (None: they may; their own labeled item always)."""
    item = store.get_item(db, project["id"], item_id)
    mine = _label(store.item_answers(db, project["id"], [item_id])[item_id], annotator)
    return {"id": item["id"], "external_id": item["external_id"], "data": item["data"], "label": mine,
            "prediction": store.item_predictions(db, project["id"], [item_id]).get(item_id),
            "refusal": store.answer_refusal(db, project["id"], item_id, annotator, int(project["overlap"]))}
