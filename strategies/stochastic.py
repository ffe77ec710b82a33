"""Stochastic batches from single-point scores (Kirsch et al. 2023, "Stochastic batch acquisition").

Taking the top-k of a single-point score fills a batch with near-duplicates;
sampling items in proportion to a sharpened score keeps the batch informative
but varied. ``stochastic_batch`` draws ``batch_size`` items as if one at a
time without replacement, each draw with probability proportional to a weight:

- ``power``:    ``s ** beta`` (scores must be >= 0)
- ``softmax``:  ``exp(beta * s)``
- ``softrank``: ``rank ** -beta``, rank 1 = highest score, ties ranked by index

The Gumbel-top-k trick does this in one pass: add independent Gumbel noise to
the log-weights and take the k largest; the order of the keys is the draw
order (Vieira 2014; Kool et al. 2019). beta = 0 gives uniform sampling, and a
large beta tends to the plain top-k.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._checks import StrategyInputError, as_rng, check_batch, check_scores

MODES = ("power", "softmax", "softrank")


def _log_weight_shape(scores_N: np.ndarray, mode: str) -> np.ndarray:
    """``log(weight) / beta``, shifted so the largest is 0 (-inf for a zero score in power mode)."""
    if mode == "power":
        with np.errstate(divide="ignore"):
            base_N = np.log(scores_N)  # log 0 = -inf: a zero score is never drawn before a positive one
    elif mode == "softmax":
        base_N = scores_N.copy()
    else:
        # softrank: a stable sort on -s ranks equal scores by index.
        order_N = np.argsort(-scores_N, kind="stable")
        base_N = np.empty(len(scores_N))
        base_N[order_N] = np.arange(1.0, len(scores_N) + 1)
        del order_N
        np.log(base_N, out=base_N)
        np.negative(base_N, out=base_N)
    peak = base_N.max()
    if np.isfinite(peak):
        base_N -= peak
    return base_N


def _top_keys(keys_N: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest keys, largest first."""
    if k < len(keys_N):
        # The (N-k)-th order statistic from the bottom, so no negated copy of the keys is made.
        top = np.argpartition(keys_N, len(keys_N) - k)[len(keys_N) - k:]
    else:
        top = np.arange(len(keys_N))
    return top[np.argsort(-keys_N[top], kind="stable")]


def stochastic_batch(scores_N, batch_size, mode="power", beta=1.0, random_state=None) -> np.ndarray:
    """``batch_size`` distinct indices in draw order, sampled without replacement by weight.

    In ``power`` mode an item with score 0 has weight 0 and is never drawn
    while an item with a positive score is left. If fewer than ``batch_size``
    items score above 0, all of them are drawn first and the batch is filled
    uniformly at random from the zero-score items (continuing the sequential
    draw as if those had a common tiny weight). With ``beta=0``, every mode
    (power included, as 0**0 = 1) samples uniformly.

    Randomness comes only from ``random_state`` (an int, a numpy Generator
    or None); the global numpy RNG is never touched. Cost is O(N) except for
    ``softrank``, which sorts the scores to rank them.
    """
    scores_N = check_scores("scores_N", scores_N).astype(np.float64, copy=False)
    batch_size = check_batch(batch_size, len(scores_N))
    if mode not in MODES:
        raise StrategyInputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if isinstance(beta, bool) or not isinstance(beta, (numbers.Real, np.floating, np.integer)):
        raise StrategyInputError(f"beta must be a number, got {beta!r}")
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise StrategyInputError(f"beta must be a finite number >= 0, got {beta}")
    if mode == "power" and scores_N.min() < 0:
        raise StrategyInputError(
            "power mode needs scores >= 0 (it samples by s**beta); "
            f"the lowest score is {scores_N.min():.6g}: use softmax or softrank for signed scores"
        )
    rng = as_rng(random_state)

    gumbel_N = rng.gumbel(size=len(scores_N))
    if beta == 0.0:
        keys_N = gumbel_N
    else:
        # Dividing the Gumbel keys beta*log_w + G by beta keeps their order and
        # cannot overflow, however large beta is; the shift keeps huge equal
        # scores from swallowing the noise.
        # In place (both are fresh arrays): scaling the noise keeps its order, which the fill below uses.
        keys_N = _log_weight_shape(scores_N, mode)
        gumbel_N /= beta
        keys_N += gumbel_N
    n_possible = len(keys_N) - int(np.isneginf(keys_N).sum())
    if n_possible >= batch_size:
        return _top_keys(keys_N, batch_size).astype(np.intp)
    # Power mode with too few positive scores (or softmax scores more than
    # ~1e308 apart) gets here: every item of nonzero weight comes first, then
    # the weightless ones uniformly, by their bare noise.
    possible = np.flatnonzero(np.isfinite(keys_N))
    rest = np.flatnonzero(~np.isfinite(keys_N))
    first = possible[_top_keys(keys_N[possible], len(possible))]
    fill = rest[_top_keys(gumbel_N[rest], batch_size - len(possible))]
    return np.concatenate([first, fill]).astype(np.intp)
