"""Stabilizing predictions (Bloodgood & Vijay-Shanker 2009): stop when more labels stop changing the model.

A fixed "stop set" of unlabeled items is predicted by every model; Cohen's kappa between two models'
predictions measures how much the labels between them changed the model. The paper compares successive
models and stops when the mean kappa over the last three reaches 0.99. Its rounds were large; a retrain
every 10 labels changes little by construction, so successive models agree at 0.99 while the curve still
climbs (on digits the paper's rule fired at 196 labels with 0.0115 still to gain by twice those labels, 3
of 5 seeds within 0.01). Here the current model is compared with the newest one trained on at most
``1 - LAG_SHARE`` of its labels: the signal fires when the two agree on the stop set at kappa ``THRESHOLD``
or more, i.e. the last 20% of the labels hardly changed the predictions.

On noisy data kappa levels off below 0.99: ambiguous items keep flipping between retrains after the
accuracy has stopped moving (adult and ag_news plateau at 0.96-0.98). So the signal also fires when the
current model expects to be at most ``GAIN_THRESHOLD`` (0.3 points) more accurate than the reference
(:func:`predicted_gain`, after Altschuler & Bloodgood 2019): a flip between two near-equal classes counts
for little there, a confident correction for much. On a power-law learning curve the gain from twice the
labels is 2 to 2.5 times the gain over the last fifth, so 0.3 points aims at the issue's 1 point by twice
the labels. The gain counts only once kappa is at least ``KAPPA_FLOOR`` (0.9): a model too unsure to tell
150 intents apart expects to gain nothing from any change, and on clinc150 it "settled" at 45 labels.
Either condition must hold for ``ROUNDS`` (three) model versions in a row, as the paper's kappa must:
early models are noisy, and a single settled version fired on adult at 90 labels with 0.02 still to gain.
docs/RESULTS.md has where each rule fires on the shared data sets.
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.99
# The signal also fires when the current model expects to be at most this much more accurate than the
# reference (predicted_gain): on noisy data kappa levels off below 0.99 while the accuracy has stopped moving.
GAIN_THRESHOLD = 0.003
# ...provided the predictions have mostly settled (kappa at least this): a model too unsure to tell classes
# apart (clinc150's 150 intents at 45 labels) expects to gain nothing from any change, kappa 0.37 or not.
KAPPA_FLOOR = 0.9
# ...in each of this many successive model versions, as in the paper's rule (its three rounds of kappa).
ROUNDS = 3
LAG_SHARE = 0.2
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


def reference_labels(n_labels: int, lag_share: float = LAG_SHARE) -> int:
    """The most labels the model compared with may have had: ``(1 - lag_share)`` of ``n_labels``."""
    return int(np.floor((1.0 - lag_share) * n_labels + 1e-9))


def reference(history, n_labels: int, lag_share: float = LAG_SHARE):
    """Of ``history`` (pairs ``(n_labels, predictions)``, oldest first), the newest with at most
    ``reference_labels(n_labels)`` labels; None when there is none."""
    limit = reference_labels(n_labels, lag_share)
    found = None
    for entry in history:
        if entry[0] <= limit:
            found = entry
    return found


def predicted_gain(probs_S_C, classes, reference_S) -> float:
    """How much more accurate the current model expects to be than the reference on the stop set: the mean,
    over the stop set, of its probability of its own prediction less its probability of the reference's
    (zero where they agree). It weighs each disagreement by how sure the current model is that it is right,
    after Altschuler & Bloodgood's predicted change of F (2019): items that flip between two near-equal
    classes count for little, a confident correction for much. A class the current model does not know
    counts as probability 0. NaN for an empty stop set."""
    probs_S_C = np.asarray(probs_S_C, dtype=float)
    if not len(probs_S_C):
        return float("nan")
    column = {str(c): j for j, c in enumerate(classes)}
    theirs_S = np.array([probs_S_C[i, column[str(c)]] if str(c) in column else 0.0
                         for i, c in enumerate(reference_S)])
    return float(np.mean(probs_S_C.max(axis=1) - theirs_S))


def settled(kappa, gain=None, threshold: float = THRESHOLD, gain_threshold: float = GAIN_THRESHOLD,
            floor: float = KAPPA_FLOOR) -> bool:
    """Whether one model version agrees with its reference at kappa ``threshold`` or more, or at ``floor`` or
    more while expecting to have gained at most ``gain_threshold`` accuracy over it (None or NaN: no
    reference yet)."""
    if kappa is None or not bool(np.isfinite(kappa)):
        return False
    small = gain is not None and bool(np.isfinite(gain)) and gain <= gain_threshold
    return kappa >= threshold or (kappa >= floor and small)


def stop_signal(settled_flags, rounds: int = ROUNDS) -> bool:
    """Whether the newest ``rounds`` model versions (``settled_flags``, oldest first, the current one last)
    all settled: one noisy retrain is not enough (a single settled version fired at 90 labels on adult)."""
    flags = list(settled_flags)[-rounds:]
    return len(flags) == rounds and all(bool(f) for f in flags)


def stop_set(n_items: int, rng: np.random.Generator, size: int = STOP_SET_SIZE) -> np.ndarray:
    """Positions of a fixed random stop set among ``n_items``, sorted."""
    return np.sort(rng.choice(n_items, size=min(size, n_items), replace=False))
