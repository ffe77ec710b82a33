"""Acquisition functions: pure array-in, array-out. No Flask, no database, no model calls.

Use :func:`get` and :func:`available` to pick a strategy by name; the scoring
functions live in ``uncertainty``, ``bald``, ``stochastic``, ``dpp`` and ``influence``.
"""
from ._checks import StrategyInputError
from .registry import (
    CAPABILITIES,
    EMBEDDINGS,
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
    "CAPABILITIES", "EMBEDDINGS", "LINEAR_HEAD", "PROBS", "SAMPLES", "LinearHead", "ModelOutputs",
    "Selection", "Strategy", "StrategyInputError", "available", "get",
]
