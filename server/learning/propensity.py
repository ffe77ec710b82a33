"""The probability a retrain's draw had of putting each item where it sits in the queue.

Exports carry it (``selection_prob``) so that evaluation downstream can weigh the labeled items by the
inverse of their chance of being labeled. Three cases, which each strategy declares in the registry
(``Strategy.draw``: strategies.UNIFORM, DETERMINISTIC, NO_CLOSED_FORM):

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


def batch_probability(strategy_name: str, params: dict | None, *, batch: int, pool: int, n_labels: int,
                      n_classes: int, multi_label: bool = False, cold_start_by: str | None = None,
                      share: float = 1.0) -> float | None:
    """The probability each item of a batch of ``batch`` out of ``pool`` had of being in it, when the ``pool``
    ranked was a uniform ``share`` of the whole pool. The strategy says how it draws at this budget
    (``Strategy.draw_at``: ``default`` answers for the phase it is in); a cold start's batch was drawn by
    the registered strategy ``cold_start_by`` (the strategy's declared ``cold_start``)."""
    try:
        if cold_start_by is not None:
            draw = strategies.get(cold_start_by).draw
        else:
            draw = strategies.get(strategy_name, **(params or {})).draw_at(n_labels, n_classes, multi_label)
    except (KeyError, ValueError, TypeError):
        return None  # a strategy the registry cannot describe: unknown, and the retrain goes on
    return _drawn(draw, batch, pool, share)


def beyond_probability(draw: str, batch_prob: float | None, *, n_more: int, pool: int,
                       batch: int, share: float = 1.0) -> float | None:
    """For the rows ranked beyond the batch (``draw``: RoundResult.more_draw): a uniform order's are ``n_more``
    drawn from the pool outside the batch; a ranking's are its top, certain once the batch they exclude was."""
    if draw == strategies.UNIFORM:
        return _uniform(n_more, pool - batch, share)
    return 1.0 if batch_prob == 1.0 else None


def audit_probability(n_audits: int, free: int, share: float = 1.0) -> float | None:
    """Audits are ``n_audits`` drawn uniformly from the ``free`` pool rows outside the batch."""
    return _uniform(n_audits, free, share)


def _drawn(draw: str | None, k: int, n: int, share: float = 1.0) -> float | None:
    """``strategies.inclusion_probability`` within a uniform ``share`` of the pool: a uniform draw from the share
    is one from the pool; a deterministic choice within a random share has no closed form."""
    if share < 1.0 and draw == strategies.DETERMINISTIC:
        return None
    p = strategies.inclusion_probability(draw, k, n)
    return None if p is None else p * min(1.0, share)


def _uniform(k: int, n: int, share: float = 1.0) -> float | None:
    return _drawn(strategies.UNIFORM, k, n, share)
