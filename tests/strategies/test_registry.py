"""Registry wrappers beyond the shared contract: BatchBALD's candidate pre-filter, select_by_scores."""
from __future__ import annotations

import numpy as np

from assay import strategies
from assay.strategies import ModelOutputs, bald


def _samples(n=60, k=8, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(c) * 0.5, size=(n, k))


def test_batchbald_candidates_none_is_plain_batchbald():
    probs = _samples()
    picked = strategies.get("batchbald", candidates=None).select(ModelOutputs(probs_N_K_C=probs), 4, random_state=0)
    assert list(picked.indices) == list(bald.batchbald(probs, 4, num_samples=10_000, random_state=0))


def test_batchbald_searches_only_the_top_candidates_by_bald():
    probs = _samples(n=200)
    top = set(np.argsort(-bald.bald(probs))[:20])
    picked = strategies.get("batchbald", candidates=20).select(ModelOutputs(probs_N_K_C=probs), 5, random_state=0)
    assert set(picked.indices) <= top and len(set(picked.indices)) == 5
    assert np.allclose(picked.scores, bald.bald(probs)[picked.indices])


def test_select_by_scores_follows_the_strategy_kind():
    scores = np.linspace(0, 1, 50)
    top = strategies.get("entropy").select_by_scores(scores, 5)
    assert list(top.indices) == [49, 48, 47, 46, 45]
    a = strategies.get("power_entropy").select_by_scores(scores, 5, random_state=1)
    b = strategies.get("power_entropy").select_by_scores(scores, 5, random_state=1)
    assert list(a.indices) == list(b.indices) and len(set(a.indices)) == 5
