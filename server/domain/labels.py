"""Which labels an answer may carry, and how many items have each.

Both the API (one answer at a time) and imports (a file's label column) check labels here. Which answer
gives an item its label is assay.learning.resolution's: the retrain reads labels through it too.
"""
from __future__ import annotations

from collections import Counter

from assay import store
from assay.errors import BadRequest
from assay.learning.resolution import labeled_items


def checked(project: dict, value, *, row: int | None = None, hint: str = ""):
    """The stored form of ``value`` (a label, or for a multi-label project a list of them), or BadRequest
    naming the allowed labels; ``row`` and ``hint`` place the message in an imported file."""
    allowed = project["labels"]
    where, whose = (f"row {row}: ", "the project's") if row is not None else ("", "this project's")
    if project["multi_label"]:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise BadRequest(f"{where}unknown label(s) {unknown}; {_which(whose, allowed)}{hint}")
        return sorted(set(value), key=allowed.index)
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"{where}unknown label {value!r}; {_which(whose, allowed)}{hint}")
    return value


def _which(whose: str, allowed: list[str], most: int = 10) -> str:
    # A project of 150 intents would print all 150 with every refused row: the first ten say enough.
    if len(allowed) <= most:
        return f"{whose} labels are {allowed}"
    return f"it is not one of {whose} {len(allowed)} labels ({', '.join(allowed[:most])}, ...)"


def check_label(project: dict, label=None, labels=None):
    """The stored form of an answer posted as ``label`` or ``labels``, or BadRequest naming the allowed labels."""
    if project["multi_label"]:
        values = labels if labels is not None else ([label] if label is not None else None)
        if not isinstance(values, list):
            raise BadRequest("a multi-label project takes \"labels\": a list of label names")
        return checked(project, values)
    if labels is not None:
        if not isinstance(labels, list) or len(labels) != 1:
            raise BadRequest("a single-label project takes one \"label\"")
        label = labels[0]
    return checked(project, label)


_label_counts_cache: dict[tuple[str, int], tuple[int, dict]] = {}


def label_counts(db, project_id: int) -> dict:
    """How many items have each label (as export resolves them); recomputed only when answers changed."""
    revision = store.counts(db, project_id)["revision"]
    key = (store.database_file(db), project_id)
    cached = _label_counts_cache.get(key)
    if cached is not None and cached[0] == revision:
        return dict(cached[1])
    tally: Counter = Counter()
    for _, label in labeled_items(db, project_id):
        for value in (label if isinstance(label, list) else [label]):
            tally[value] += 1
    _label_counts_cache[key] = (revision, dict(tally))
    return dict(tally)
