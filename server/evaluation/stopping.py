"""Stabilizing predictions (Bloodgood & Vijay-Shanker 2009): stop when successive models agree.

A fixed "stop set" of unlabeled items is predicted by every model; Cohen's kappa between two successive
models' predictions measures how much the last labels still changed the model. When the mean kappa over the
last ``window`` retrains reaches ``threshold`` the predictions have stabilized, and more labels are unlikely
to change them: the signal to stop (or to look at the estimate and decide).
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.99
WINDOW = 3
STOP_SET_SIZE = 2_000


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two label sequences of equal length (1.0 when both are one same constant)."""
    a, b = np.asarray(a).astype(str), np.asarray(b).astype(str)
    if len(a) != len(b):
        raise ValueError(f"kappa needs two sequences of one length, got {len(a)} and {len(b)}")
    if not len(a):
        return float("nan")
    observed = float(np.mean(a == b))
    labels, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    pa = np.bincount(inverse[:len(a)], minlength=len(labels)) / len(a)
    pb = np.bincount(inverse[len(a):], minlength=len(labels)) / len(b)
    expected = float(pa @ pb)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def stop_signal(kappas, threshold: float = THRESHOLD, window: int = WINDOW) -> bool:
    """Whether the mean of the last ``window`` kappas (NaN: a round without one) reaches ``threshold``."""
    recent = [k for k in list(kappas)[-window:] if k is not None and np.isfinite(k)]
    return len(recent) == window and float(np.mean(recent)) >= threshold


def stop_set(n_items: int, rng: np.random.Generator, size: int = STOP_SET_SIZE) -> np.ndarray:
    """Positions of a fixed random stop set among ``n_items``, sorted."""
    return np.sort(rng.choice(n_items, size=min(size, n_items), replace=False))
