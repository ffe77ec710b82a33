"""The per-seed design of an experiment: test split, pool cap and initial labeled set.

All three are stratified and drawn from one seed, so every strategy run with
that seed sees the same test items, the same pool and the same first labels.
Stratifying needs the labels: that is the experimenter's choice of which items
to hold out or to seed the project with (as a team would seed it with a few
examples per class), not information handed to a strategy. The initial labels
themselves are still revealed through the oracle.
"""
from __future__ import annotations

import numpy as np


def allocate(counts: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    """Split ``total`` over groups proportionally to ``counts`` (largest remainder).

    Each group gets at least ``minimum`` (when ``total`` allows it for every
    group) and never more than its count.
    """
    counts = np.asarray(counts, dtype=int)
    total = int(min(total, counts.sum()))
    floor = np.minimum(counts, minimum) if total >= np.minimum(counts, minimum).sum() else np.zeros_like(counts)
    share = floor.astype(float)
    rest = total - floor.sum()
    spare = counts - floor
    if rest > 0 and spare.sum() > 0:
        share = floor + rest * spare / spare.sum()
    out = np.minimum(np.floor(share).astype(int), counts)
    # Hand out what rounding left, largest fractional part first, where room remains.
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    while out.sum() < total:
        for g in order:
            if out.sum() >= total:
                break
            if out[g] < counts[g]:
                out[g] += 1
    return out


def _stratified_take(labels: np.ndarray, n: int, rng: np.random.Generator, minimum: int = 1) -> np.ndarray:
    """``n`` positions of ``labels``, stratified by label, sorted."""
    classes, inverse, counts = np.unique(labels.astype(str), return_inverse=True, return_counts=True)
    take = allocate(counts, n, minimum)
    chosen = [rng.choice(np.flatnonzero(inverse == c), size=k, replace=False) for c, k in enumerate(take) if k]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


def holdout_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions: ``fraction`` of each class held out, at least one of each class kept to train on."""
    if not 0 < fraction < 1:
        raise ValueError(f"the test fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels).astype(str)
    test = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n_test = min(int(round(fraction * len(idx))), len(idx) - 1)
        if n_test > 0:
            test.append(rng.choice(idx, size=n_test, replace=False))
    test = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=int)
    if len(test) == 0:
        raise ValueError("the data set is too small to hold out a test split")
    return np.setdiff1d(np.arange(len(labels)), test), test


def cap_pool(train: np.ndarray, labels: np.ndarray, max_pool: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_pool`` of the training positions, stratified (all of them when None)."""
    if max_pool is None or len(train) <= max_pool:
        return train
    keep = _stratified_take(np.asarray(labels)[train], int(max_pool), rng)
    return train[keep]


def initial_set(train_labels: np.ndarray, n_initial: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into the training split) of the first labeled items: stratified, one per class when possible."""
    return _stratified_take(np.asarray(train_labels), int(n_initial), rng)
