"""Temperature scaling (Guo et al., ICML 2017) from each prediction's first guesses: the first stage of the
accuracy estimate's calibration (:mod:`assay.evaluation.accuracy`).

Why: a model trained on a strategy's picks can be underconfident on the rest of the data (a linear model
trained on boundary items keeps small weights), and the Platt calibration that follows cannot see it: the
picks sit at low confidence, where the model's confidence is about right, and its prior holds the slope at
the confident end near 1. A temperature is one number for the whole probability vector. Fitted by the
likelihood of the answers under the *whole* prediction (how much probability the model gave the right
label, not only whether its first guess was it), the picks themselves measure it: on a 26-class table the
calibrated estimate ran 0.05 low under margin and 0.01 with the temperature first (docs/RESULTS.md, issue
27, third pass). With two classes the first guesses hold little more than the confidence, the temperature
is Platt's slope under another name, and picks at 0.5 leave it unidentified; its prior (``PRIOR_SD`` on
log T) keeps it near 1 there.

A prediction is stored as its first ``TOP_K`` guesses (the queue keeps those); the probability the others
share is spread evenly over them, which is exact for the first guesses and close for the rest.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

TOP_K = 5
# The prior's spread on log T: chosen on adult (two classes: without a prior the estimate ran +0.05 high
# under default, the temperature swinging from 0.1 to 5; with 0.5, +0.015) and on digits under a model
# tempered to 2.0 (any of the three fixed it); reported on the other sets (docs/RESULTS.md, issue 27, third
# pass).
PRIOR_SD = 0.2
LOG_T_BOUND = float(np.log(10.0))
FLOOR = 1e-6  # stored probabilities are rounded to 4 decimals: a right answer shown at 0.0 is not impossible


def first_guesses(probs_N_C, k: int = TOP_K) -> np.ndarray:
    """Each row's ``k`` largest probabilities, best first (N x min(k, C))."""
    probs_N_C = np.asarray(probs_N_C, dtype=float)
    k = min(k, probs_N_C.shape[1])
    return -np.sort(-probs_N_C, axis=1)[:, :k]


def _rest(top_N_K, n_classes: int) -> tuple[np.ndarray, int]:
    """The probability each unlisted class gets (the rest spread evenly), and how many there are."""
    unlisted = max(int(n_classes) - top_N_K.shape[1], 0)
    rest_N = np.clip(1.0 - top_N_K.sum(axis=1), 0.0, 1.0)
    return (rest_N / unlisted if unlisted else np.zeros(len(top_N_K))), unlisted


def _log_normalizer(top_N_K, each_N, unlisted: int, beta: float) -> np.ndarray:
    listed = np.where(top_N_K > 0, np.power(np.clip(top_N_K, FLOOR, 1.0), beta), 0.0).sum(axis=1)
    tail = unlisted * np.where(each_N > 0, np.power(np.clip(each_N, FLOOR, 1.0), beta), 0.0)
    return np.log(listed + tail)


def tempered_confidence(top_N_K, n_classes: int, temperature: float) -> np.ndarray:
    """The first guess's probability after raising every probability to 1/T and renormalizing."""
    top_N_K = np.atleast_2d(np.asarray(top_N_K, dtype=float))
    if temperature == 1.0 or not len(top_N_K):
        return top_N_K[:, 0].copy() if len(top_N_K) else np.zeros(0)
    beta = 1.0 / temperature
    each_N, unlisted = _rest(top_N_K, n_classes)
    return np.exp(beta * np.log(np.clip(top_N_K[:, 0], FLOOR, 1.0))
                  - _log_normalizer(top_N_K, each_N, unlisted, beta))


def fit_temperature(top_M_K, hit_M, n_classes: int, weights_M=None, prior_sd: float = PRIOR_SD) -> float:
    """The temperature that makes the answers likeliest (MAP, a Gaussian prior of ``prior_sd`` on log T).

    ``top_M_K``: each test's first guesses, best first; ``hit_M``: which of them the answer was (-1: none
    listed; the answer then had the spread rest). 1.0 with no test or one class."""
    top_M_K = np.atleast_2d(np.asarray(top_M_K, dtype=float))
    hit_M = np.asarray(hit_M, dtype=int)
    if not len(hit_M) or n_classes < 2:
        return 1.0
    w_M = np.ones(len(hit_M)) if weights_M is None else np.asarray(weights_M, dtype=float)
    each_M, unlisted = _rest(top_M_K, n_classes)
    listed = hit_M >= 0
    p_M = np.where(listed, top_M_K[np.arange(len(hit_M)), np.maximum(hit_M, 0)], each_M)
    log_p_M = np.log(np.clip(p_M, FLOOR, 1.0))

    def loss(log_t: float) -> float:
        beta = float(np.exp(-log_t))
        log_lik = beta * log_p_M - _log_normalizer(top_M_K, each_M, unlisted, beta)
        return float(-(w_M * log_lik).sum() + 0.5 * (log_t / prior_sd) ** 2)

    best = minimize_scalar(loss, bounds=(-LOG_T_BOUND, LOG_T_BOUND), method="bounded",
                           options={"xatol": 1e-4})
    return float(np.exp(best.x))


def answer_rank(labels_M_K, answers_M) -> np.ndarray:
    """Where each answer stands among its prediction's first guesses (-1: not among them)."""
    out = np.full(len(answers_M), -1, dtype=int)
    for m, (labels, answer) in enumerate(zip(labels_M_K, answers_M)):
        for k, label in enumerate(labels):
            if label == answer:
                out[m] = k
                break
    return out
