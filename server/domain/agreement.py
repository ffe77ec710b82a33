"""Inter-annotator agreement (which label an item gets is assay.learning.resolution's).

Pure functions over plain data: ``units`` maps an item to the values its
annotators gave ({annotator: value}); a value is a label, or for multi-label
projects a tuple of labels.
"""
from __future__ import annotations

from collections import Counter
from itertools import combinations


def krippendorff_alpha_nominal(units: list[list]) -> float | None:
    """Krippendorff's alpha for nominal data (Krippendorff 2011, coincidence-matrix form).

    ``units`` holds, per item, the values it received; items with fewer than
    two values are not pairable and are ignored. None when undefined (no
    pairable items, or one value used throughout so expected disagreement is 0).
    """
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    totals: Counter = Counter()
    observed = 0.0
    for values in pairable:
        counts = Counter(values)
        m = len(values)
        totals.update(counts)
        # Ordered pairs of different values inside the unit, each weighted 1/(m-1).
        disagreeing = m * m - sum(c * c for c in counts.values())
        observed += disagreeing / (m - 1)
    n = sum(totals.values())
    expected = (n * n - sum(c * c for c in totals.values())) / (n - 1)
    if expected == 0:
        return None
    return 1.0 - observed / expected


def cohen_kappa(a: list, b: list) -> float | None:
    """Cohen's kappa of two annotators over the items both labeled (paired lists)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa needs paired lists of equal length")
    n = len(a)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[v] * cb[v] for v in set(ca) | set(cb)) / (n * n)
    if p_e == 1:
        return None
    return (p_o - p_e) / (1 - p_e)


def summarize(units: dict, labels: list[str], multi_label: bool) -> dict:
    """Agreement overall and per label, pairwise kappas, and the items annotators disagree on.

    ``units``: {item_id: {annotator: value}} with value a label (or a tuple of labels).
    """
    overlapping = {i: u for i, u in units.items() if len(u) >= 2}
    overall = krippendorff_alpha_nominal([list(u.values()) for u in overlapping.values()])
    per_label = {}
    for label in labels:
        def has(value, label=label):
            return label in value if multi_label else value == label

        per_label[label] = krippendorff_alpha_nominal(
            [[has(v) for v in u.values()] for u in overlapping.values()])
    annotators = sorted({a for u in units.values() for a in u})
    pairs = []
    for x, y in combinations(annotators, 2):
        shared = [u for u in units.values() if x in u and y in u]
        if shared:
            pairs.append({"annotators": [x, y], "items": len(shared),
                          "kappa": cohen_kappa([u[x] for u in shared], [u[y] for u in shared])})
    disagreements = sorted(i for i, u in overlapping.items() if len(set(u.values())) > 1)
    return {
        "items_with_overlap": len(overlapping),
        "annotators": annotators,
        "alpha": overall,
        "kappa": pairs[0]["kappa"] if len(annotators) == 2 and pairs else None,
        "pairwise_kappa": pairs,
        "per_label_alpha": per_label,
        "disagreements": len(disagreements),
        "disagreement_items": disagreements,
    }
