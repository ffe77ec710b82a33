"""Acquisition functions: pure array-in, array-out. No Flask, no database, no model calls.

Use :func:`get` and :func:`available` to pick a strategy by name; the scoring
functions live in ``uncertainty``, ``bald``, ``stochastic``, ``dpp``, ``influence``
and ``small_budget``. :func:`as_rng` is how every strategy (and Assay's models) turns a ``random_state``
into a Generator.
"""
from ._checks import StrategyInputError, as_rng
from .numerics import softmax_inplace
from .registry import (
    CAPABILITIES,
    EMBEDDINGS,
    LABELED_EMBEDDINGS,
    LINEAR_HEAD,
    PROBS,
    SAMPLES,
    LinearHead,
    ModelOutputs,
    Selection,
    Strategy,
    available,
    get,
)

__all__ = [
    "CAPABILITIES", "EMBEDDINGS", "LABELED_EMBEDDINGS", "LINEAR_HEAD", "PROBS", "SAMPLES", "LinearHead", "ModelOutputs",
    "Selection", "Strategy", "StrategyInputError", "as_rng", "available", "get", "softmax_inplace",
]
