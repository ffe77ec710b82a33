"""Input checks shared by every strategy.

Strategies refuse bad input loudly instead of guessing: a logit matrix passed
where probabilities belong would otherwise give plausible-looking nonsense.
"""
from __future__ import annotations

import numbers

import numpy as np

# Probabilities coming out of float32 models drift by ~1e-6 per row.
ROW_SUM_TOL = 1e-4
NEGATIVE_MESSAGE = "{name} has negative entries; pass probabilities, not logits"


class StrategyInputError(ValueError):
    """Raised when a strategy is given arrays it cannot score."""


def as_rng(random_state) -> np.random.Generator:
    """An independent Generator from an int, a Generator or None (never the global RNG)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        return np.random.default_rng(random_state)
    raise StrategyInputError(
        f"random_state must be an int, a numpy Generator or None, got {type(random_state).__name__}"
    )


def _float_array(name: str, array, ndim: int) -> np.ndarray:
    """``array`` as float32/float64 with ``ndim`` dimensions (values unchecked)."""
    arr = np.asarray(array)
    if arr.ndim != ndim:
        raise StrategyInputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise StrategyInputError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _finite_float_array(name: str, array, ndim: int) -> np.ndarray:
    arr = _float_array(name, array, ndim)
    if not np.all(np.isfinite(arr)):
        raise StrategyInputError(f"{name} contains NaN or infinite values")
    return arr


def check_probs(name: str, probs, ndim: int) -> np.ndarray:
    """Validate a probability array whose last axis is classes; returns it as float (no copy if possible)."""
    arr = check_probs_shape(name, probs, ndim)
    check_probs_values(name, arr)
    return arr


def check_probs_shape(name: str, probs, ndim: int) -> np.ndarray:
    """The shape and dtype half of :func:`check_probs`; values are checked by :func:`check_probs_values`.

    Split so that a strategy streaming over a large array in blocks can check
    each block while it is in cache instead of making extra passes over memory.
    """
    arr = _float_array(name, probs, ndim)
    if arr.shape[-1] < 1:
        raise StrategyInputError(f"{name} needs at least one class column, got shape {arr.shape}")
    return arr


def check_probs_values(name: str, arr: np.ndarray, negatives: bool = True) -> None:
    """No NaN, nothing negative, rows summing to 1 (two passes: a min and a row sum).

    ``negatives=False`` skips the min pass, for a caller that detects negative
    entries another way (BALD sees them as NaN logarithms).
    """
    if not arr.size:
        return
    if negatives:
        smallest = arr.min()  # NaN anywhere makes the min NaN; -inf is negative
        if np.isnan(smallest):
            raise StrategyInputError(f"{name} contains NaN or infinite values")
        if smallest < 0:
            raise StrategyInputError(NEGATIVE_MESSAGE.format(name=name))
    # A matrix-vector product sums rows several times faster than arr.sum(axis=-1) (pairwise summation).
    # NaN or +inf entries make a row sum NaN or infinite, so this also catches them.
    sums = arr @ np.ones(arr.shape[-1], dtype=arr.dtype)
    high, low = sums.max(), sums.min()
    if not (np.isfinite(high) and np.isfinite(low)):
        raise StrategyInputError(f"{name} contains NaN or infinite values")
    if high - 1.0 > ROW_SUM_TOL or 1.0 - low > ROW_SUM_TOL:
        worst = high if high - 1.0 > 1.0 - low else low
        raise StrategyInputError(
            f"{name} rows must sum to 1 (worst row sums to {worst:.6g}); "
            "apply a softmax yourself if these are logits"
        )


def check_scores(name: str, scores) -> np.ndarray:
    arr = _finite_float_array(name, scores, 1)
    return arr


def check_matrix(name: str, matrix) -> np.ndarray:
    return _finite_float_array(name, matrix, 2)


def check_batch(batch_size, pool_size: int) -> int:
    """A batch size that is a positive int no larger than a non-empty pool."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (numbers.Integral, np.integer)):
        raise StrategyInputError(f"batch_size must be an integer, got {batch_size!r}")
    batch_size = int(batch_size)
    if pool_size == 0:
        raise StrategyInputError("the pool is empty: there is nothing to select")
    if batch_size < 1:
        raise StrategyInputError(f"batch_size must be at least 1, got {batch_size}")
    if batch_size > pool_size:
        raise StrategyInputError(f"batch_size {batch_size} is larger than the pool ({pool_size} items)")
    return batch_size
