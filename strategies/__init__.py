"""Acquisition functions: pure array-in, array-out. No Flask, no database, no model calls.

Use :func:`get` and :func:`available` to pick a strategy by name; the scoring
functions live in ``uncertainty``, ``bald``, ``stochastic``, ``dpp``, ``influence``
and ``small_budget``. :func:`as_rng` is how every strategy (and Assay's models) turns a ``random_state``
into a Generator.
"""
from ._checks import StrategyInputError, as_rng
from .numerics import softmax_inplace
from .registry import (
    BASELINE,
    CAPABILITIES,
    CLUSTER_BY_SCORE,
    CLUSTER_SHORTLIST,
    DETERMINISTIC,
    DRAWS,
    EMBEDDINGS,
    LABELED_EMBEDDINGS,
    LINEAR_HEAD,
    MARGIN,
    NO_CLOSED_FORM,
    PROBS,
    SAMPLES,
    UNIFORM,
    UNIFORM_ORDER,
    LinearHead,
    ModelOutputs,
    Selection,
    Strategy,
    available,
    beyond_label,
    cold_start_label,
    get,
    inclusion_probability,
)

__all__ = [
    "BASELINE", "CAPABILITIES", "CLUSTER_BY_SCORE", "CLUSTER_SHORTLIST", "DETERMINISTIC", "DRAWS", "EMBEDDINGS",
    "LABELED_EMBEDDINGS", "LINEAR_HEAD", "MARGIN", "NO_CLOSED_FORM", "PROBS", "SAMPLES", "UNIFORM", "UNIFORM_ORDER",
    "LinearHead", "ModelOutputs", "Selection", "Strategy", "StrategyInputError", "as_rng", "available",
    "beyond_label", "cold_start_label", "get", "inclusion_probability", "softmax_inplace",
]
