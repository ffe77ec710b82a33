"""The probability a retrain's draw had of putting each item where it sits in the queue.

Exports carry it (``selection_prob``) so that evaluation downstream can weigh the labeled items by the
inverse of their chance of being labeled. Three cases:

- a uniform draw (the ``random`` strategy, a random cold start, the audits, the random rows beyond a
  random batch): k of N, known exactly;
- a deterministic choice given the model (top-k by a score, a greedy DPP, the rows beyond a
  deterministic batch ranked by a score): 1 for every item it took, 0 for the rest. Inverse weighting
  cannot undo such a choice; only the audits, drawn uniformly, can (assay.evaluation.accuracy);
- a randomized choice whose inclusion probabilities have no closed form (the stochastic ``power_`` /
  ``softmax_`` / ``softrank_`` batches, drawn without replacement; k-means or random starts in
  ``typiclust``, ``coreset``, ``probcover``, ``badge``; ``batchbald``'s sampled configurations), and the
  rows ranked after such a batch: None, unknown, rather than a number that looks exact and is not.

While the pool is still being featurized a round ranks only its featurized ``share``, a uniform random sample
of it (assay.learning.featcache): a uniform draw from the share is then a uniform draw from the pool, k of N
with N the whole pool; a deterministic choice within a random share has no closed form (None).
"""
from __future__ import annotations

from assay import strategies

RANDOM_COLD_START = "random (cold start)"
DPP_COLD_START = "dpp (cold start)"
# Batch-aware strategies whose batch is a deterministic function of the model's outputs.
_DETERMINISTIC_BATCH = frozenset({"dpp", "influence"})


def deterministic(strategy_name: str, params: dict | None, n_labels: int, n_classes: int,
                  multi_label: bool = False) -> bool:
    """Whether the strategy's batch is a function of the model alone (no random draw in it)."""
    strategy = strategies.get(strategy_name, **(params or {}))
    if multi_label:
        # Multi-label rounds select by the summed per-label scores (Strategy.select_by_scores).
        return strategy.by_score and "mode" not in strategy.params
    if strategy.name == "default":
        # The same budget switch the strategy applies (strategies.registry._run_default).
        early = n_classes == 0 or n_labels < strategy.params["switch"] * n_classes
        return deterministic(strategy.params["first" if early else "then"], None, n_labels, n_classes)
    if strategy.by_score:
        return "mode" not in strategy.params
    return strategy.name in _DETERMINISTIC_BATCH


def batch_probability(strategy_name: str, params: dict | None, *, batch: int, pool: int, n_labels: int,
                      n_classes: int, multi_label: bool = False, cold_start_name: str | None = None,
                      share: float = 1.0) -> float | None:
    """The probability each item of a batch of ``batch`` out of ``pool`` had of being in it, when the ``pool``
    ranked was a uniform ``share`` of the whole pool."""
    certain = 1.0 if share >= 1.0 else None
    if cold_start_name is not None:
        if cold_start_name == RANDOM_COLD_START:
            return _uniform(batch, pool, share)
        return certain if cold_start_name == DPP_COLD_START else None
    if strategy_name == "random":
        return _uniform(batch, pool, share)
    try:
        return certain if deterministic(strategy_name, params, n_labels, n_classes, multi_label) else None
    except (KeyError, ValueError, TypeError):
        return None  # a strategy the registry cannot describe: unknown, and the retrain goes on


def beyond_probability(more_strategy: str, batch_prob: float | None, *, n_more: int, pool: int,
                       batch: int, share: float = 1.0) -> float | None:
    """For the rows ranked beyond the batch: random ones are ``n_more`` drawn from the pool outside the
    batch; scored ones are the top of a ranking, certain once the batch they exclude was."""
    if more_strategy.startswith("random"):
        return _uniform(n_more, pool - batch, share)
    return 1.0 if batch_prob == 1.0 else None


def audit_probability(n_audits: int, free: int, share: float = 1.0) -> float | None:
    """Audits are ``n_audits`` drawn uniformly from the ``free`` pool rows outside the batch."""
    return _uniform(n_audits, free, share)


def _uniform(k: int, n: int, share: float = 1.0) -> float | None:
    return min(1.0, k / n) * min(1.0, share) if n > 0 else None
