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


# -- sharded pools -------------------------------------------------------------
# A pool too large for one process is scored in shards. The keys above are (log_w - peak) + G / beta with
# G drawn for the whole pool from one Generator, so a shard given G's slice for its rows (the same stream
# positions) and the pool-wide peak makes exactly the keys one process would. A shard does not know the
# peak, so it keeps the unshifted parts of its best keys and the merge finishes them as stochastic_batch does.

# Candidates a shard keeps beyond k: the shard ranks by unshifted keys, which rounding may order a hair
# differently from the shifted ones near a tie; a margin of spare candidates absorbs that.
SPARE_CANDIDATES = 32


def shard_candidates(scores_n, gumbel_n, k: int, mode: str = "power", beta: float = 1.0) -> dict:
    """What one shard contributes to a pool-wide Gumbel-top-k: its best candidates (positions in the shard),
    their unshifted log-weights and scaled noise, its largest log-weight, and the best of its weightless items.

    ``gumbel_n`` must be the slice of ``rng.gumbel(size=N)`` at the shard's rows. ``softrank`` needs pool-wide
    ranks, so it has no shard form: rank the gathered scores with :func:`stochastic_batch` instead.
    """
    if mode not in ("power", "softmax"):
        raise StrategyInputError(f"mode {mode!r} has no shard form (softrank ranks the whole pool)")
    scores_n = np.asarray(scores_n, dtype=np.float64)
    noise_n = np.asarray(gumbel_n, dtype=np.float64)
    beta = float(beta)
    if beta == 0.0:
        base_n = np.zeros(len(scores_n))
    else:
        noise_n = noise_n / beta
        if mode == "power":
            # A negative score gives nan here; the merge rejects it as stochastic_batch does.
            with np.errstate(divide="ignore", invalid="ignore"):
                base_n = np.log(scores_n)
        else:
            base_n = scores_n.copy()
    keys_n = base_n + noise_n
    finite = np.isfinite(keys_n)
    take = min(len(keys_n), int(k) + SPARE_CANDIDATES)
    possible = np.flatnonzero(finite)
    best = possible[_top_keys(keys_n[possible], min(take, len(possible)))] if len(possible) else possible
    rest = np.flatnonzero(~finite)
    fill = rest[_top_keys(noise_n[rest], min(int(k), len(rest)))] if len(rest) else rest
    return {"index": best, "base": base_n[best], "noise": noise_n[best],
            "peak": float(base_n.max()) if len(base_n) else -np.inf, "n_possible": int(finite.sum()),
            "fill_index": fill, "fill_noise": noise_n[fill],
            "min_score": float(scores_n.min()) if len(scores_n) else np.inf}


def merge_candidates(parts, batch_size: int, mode: str = "power", beta: float = 1.0) -> np.ndarray:
    """The pool-wide picks, in draw order, from :func:`shard_candidates` parts whose ``index`` and
    ``fill_index`` were made global (offset by each shard's first row): the same as ``stochastic_batch``
    on the whole pool with the same noise."""
    parts = list(parts)
    if mode == "power" and parts and min(p["min_score"] for p in parts) < 0:
        raise StrategyInputError("power mode needs scores >= 0 (it samples by s**beta); use softmax or softrank "
                                 "for signed scores")
    index = np.concatenate([p["index"] for p in parts]).astype(np.intp)
    base = np.concatenate([p["base"] for p in parts])
    noise = np.concatenate([p["noise"] for p in parts])
    peak = max(p["peak"] for p in parts)
    if np.isfinite(peak) and float(beta) != 0.0:
        base = base - peak
    keys = noise.copy() if float(beta) == 0.0 else base + noise
    n_possible = sum(p["n_possible"] for p in parts)
    if n_possible >= batch_size:
        # Ties between keys (never seen with continuous noise) are broken by index here, not by argpartition.
        order = np.lexsort((index, -keys))
        return index[order[:batch_size]]
    first = index[np.lexsort((index, -keys))]
    fill_index = np.concatenate([p["fill_index"] for p in parts]).astype(np.intp)
    fill_noise = np.concatenate([p["fill_noise"] for p in parts])
    fill = fill_index[np.lexsort((fill_index, -fill_noise))][:batch_size - len(first)]
    return np.concatenate([first, fill]).astype(np.intp)
